//! JSON Schemas of the record fields whose types have none of their own (the probe crate's
//! namespace sets, and data the schema describes loosely on purpose), named by the
//! `schemars(schema_with)` attributes of the records.

use isoprobe_harness::NsKind;
use schemars::{Schema, SchemaGenerator, json_schema};

pub fn ns_kind(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = NsKind::ALL.iter().map(|k| k.name()).collect();
    json_schema!({ "type": "string", "enum": names })
}

pub fn ns_set(g: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "a set of namespace kinds, sorted",
        "type": "array",
        "items": ns_kind(g),
        "uniqueItems": true,
    })
}

pub fn id_map(_: &mut SchemaGenerator) -> Schema {
    let u32 = json_schema!({ "type": "integer", "minimum": 0, "maximum": u32::MAX });
    json_schema!({
        "description": "lines of /proc/<pid>/uid_map or gid_map",
        "type": "array",
        "items": {
            "type": "object",
            "properties": { "inside": u32, "outside": u32, "count": u32 },
            "required": ["inside", "outside", "count"],
        },
    })
}

/// Left open (any object): a report reader needs the exercise's name at most, and the schema of
/// every exercise's parameters would only repeat [`super::spec::Exercise`].
pub fn exercise(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "what the probe does to run into its cgroup's limits, tagged by `exercise` \
                        (probes/src/wire/limits.rs, Exercise)",
        "type": "object",
    })
}

pub fn sysctl_stripe(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "the share of the sysctl sweeps a case made: the entries whose path's FNV-1a hash is `index` \
                        modulo `of`",
        "type": ["object", "null"],
        "properties": { "index": { "type": "integer", "minimum": 0 }, "of": { "type": "integer", "minimum": 0 } },
        "required": ["index", "of"],
    })
}

pub fn time_offsets(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "clock offsets of a time namespace, in nanoseconds",
        "type": ["object", "null"],
        "properties": { "monotonic_ns": { "type": "integer" }, "boottime_ns": { "type": "integer" } },
        "required": ["monotonic_ns", "boottime_ns"],
    })
}

//! The harness's end of the wire: send the hello, collect facts, answer questions, until the probe
//! says it is done. Everything has a deadline; a probe that prints garbage, stops talking or dies
//! ends the conversation with an error that names the line and carries the probe's stderr.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use isoprobe_probes::wire::{self, Fact, FromProbe, ToProbe};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::HarnessError;
use crate::host::HostSide;
use crate::judge::Facts;
use crate::launcher::process::{ProbeProcess, describe};
use crate::phases::{Phase, Phases};

/// The most stderr kept per probe.
const STDERR_CAP: usize = 64 * 1024;
/// The longest line accepted from a probe (a guard against a probe that never prints a newline).
const LINE_CAP: usize = 1024 * 1024;

/// What a probe said.
#[derive(Debug, Default)]
pub struct Transcript {
    pub facts: Facts,
    pub init: Vec<String>,
    /// The steps the probe's interlock refused (its namespace of that kind was the harness's).
    pub refused: Vec<isoprobe_probes::wire::Refusal>,
}

/// Reads a probe's stdout and stderr without blocking on either.
#[derive(Debug, Default)]
pub struct Streams {
    out: Vec<u8>,
    pub err: Vec<u8>,
    out_eof: bool,
    err_eof: bool,
    lines: usize,
}

impl Streams {
    /// Waits for output until `deadline`; returns false at the deadline.
    fn pump(&mut self, p: &ProbeProcess, deadline: Instant) -> Result<bool, HarnessError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let timeout = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = Vec::new();
        if !self.out_eof {
            fds.push(PollFd::new(p.stdout.as_fd(), PollFlags::POLLIN));
        }
        if !self.err_eof {
            fds.push(PollFd::new(p.stderr.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            return Ok(true);
        }
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(false),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(HarnessError::Sys { what: "poll the probe's output".into(), source: e }),
        }
        // Only the streams poll found ready (data, end of file or an error) are read: the probe
        // answers on stdout alone, and a read of the quiet stderr after every line cost a system
        // call that found nothing.
        // fds holds stdout first (when polled), then stderr; revents unknown counts as ready.
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_none_or(|r| !r.is_empty());
        let (out_ready, err_ready) = (ready(0), ready(usize::from(!self.out_eof)));
        if !self.out_eof && out_ready {
            self.out_eof = drain(&p.stdout, &mut self.out, usize::MAX)?;
        }
        if !self.err_eof && err_ready {
            self.err_eof = drain(&p.stderr, &mut self.err, STDERR_CAP)?;
        }
        Ok(true)
    }

    /// The next complete stdout line, if one is buffered.
    fn next_line(&mut self) -> Result<Option<String>, HarnessError> {
        let Some(nl) = self.out.iter().position(|b| *b == b'\n') else {
            if self.out.len() > LINE_CAP {
                return Err(HarnessError::Protocol(format!("line {} is longer than {LINE_CAP} bytes", self.lines + 1)));
            }
            return Ok(None);
        };
        let line: Vec<u8> = self.out.drain(..=nl).collect();
        self.lines += 1;
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| HarnessError::Protocol(format!("line {} of the probe's output is not UTF-8", self.lines)))
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.err).trim().to_owned()
    }

    /// Reads the rest of stderr until end of file or `deadline`.
    pub fn finish(&mut self, p: &ProbeProcess, deadline: Instant) {
        while !(self.err_eof && self.out_eof) {
            match self.pump(p, deadline) {
                Ok(true) => {}
                _ => break,
            }
        }
    }
}

/// Appends what `fd` holds to `buf` (up to `cap` bytes kept); true at end of file.
fn drain(fd: &OwnedFd, buf: &mut Vec<u8>, cap: usize) -> Result<bool, HarnessError> {
    let mut chunk = [0u8; 8192];
    loop {
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                let keep = n.min(cap.saturating_sub(buf.len()));
                buf.extend_from_slice(&chunk[..keep]);
                // A pipe that gave less than asked had no more: the next poll says when there
                // is (or the end), so no read is made only to hear EAGAIN.
                if n < chunk.len() {
                    return Ok(false);
                }
            }
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(HarnessError::Sys { what: "read the probe's output".into(), source: e }),
        }
    }
}

fn send(p: &mut ProbeProcess, msg: &ToProbe) -> Result<(), HarnessError> {
    send_all(p, std::slice::from_ref(msg))
}

/// Writes `msgs` to the probe's stdin in one write.
fn send_all(p: &mut ProbeProcess, msgs: &[ToProbe]) -> Result<(), HarnessError> {
    let stdin = p.stdin.as_mut().ok_or_else(|| HarnessError::Protocol("stdin already closed".into()))?;
    let lines: String = msgs.iter().map(wire::encode).collect();
    stdin
        .write_all(lines.as_bytes())
        .map_err(|e| HarnessError::Protocol(format!("failed to write to the probe's stdin: {e}")))
}

/// Sends the hello that starts a conversation ([`converse`] carries it on); a failure carries the
/// probe's stderr.
pub fn send_hello(p: &mut ProbeProcess, streams: &Streams, hello: &ToProbe) -> Result<(), HarnessError> {
    send(p, hello).map_err(|e| with_stderr(e, streams))
}

fn with_stderr(e: HarnessError, s: &Streams) -> HarnessError {
    let err = s.stderr_text();
    if err.is_empty() { e } else { HarnessError::Protocol(format!("{e}; probe stderr: {err}")) }
}

/// Runs one conversation from its hello ([`send_hello`]) to the probe's `done`, timing its
/// phases in `phases`: from here to the init report ([`Phase::Init`]), from there to `done`
/// ([`Phase::Observe`]), each less the time the host spent answering ([`Phase::HostAnswers`]).
pub fn converse(
    p: &mut ProbeProcess,
    streams: &mut Streams,
    host: &mut HostSide<'_>,
    deadline: Instant,
    started: Instant,
    phases: &mut Phases,
) -> Result<Transcript, HarnessError> {
    // The phase under way (init until the init report, then observe), when it began, and how
    // much of it since went to answers.
    let (mut phase, mut since, mut answering) = (Phase::Init, Instant::now(), Duration::ZERO);
    let mut end_phase = |phase: Phase, since: Instant, answering: &mut Duration| {
        let answers = std::mem::take(answering);
        phases.add(phase, since.elapsed().saturating_sub(answers));
        phases.add(Phase::HostAnswers, answers);
        Instant::now()
    };
    let mut t = Transcript::default();
    // The answers to the questions of the lines read so far: written together once no complete
    // line is left (before waiting for more), so questions the probe sent together (see the
    // probe's `Channel::ask_all`) wake it once.
    let mut answers: Vec<ToProbe> = Vec::new();
    loop {
        while let Some(line) = streams.next_line().map_err(|e| with_stderr(e, streams))? {
            let msg: FromProbe = wire::decode("probe message", streams.lines, &line)
                .map_err(|e| with_stderr(HarnessError::Protocol(e.to_string()), streams))?;
            match msg {
                FromProbe::Fact { fact: Fact::Init { steps, refused } } => {
                    since = end_phase(phase, since, &mut answering);
                    phase = Phase::Observe;
                    t.init = steps.clone();
                    t.refused = refused.clone();
                    t.facts.insert(Fact::Init { steps, refused }).map_err(HarnessError::Protocol)?;
                }
                FromProbe::Fact { fact } => t.facts.insert(fact).map_err(HarnessError::Protocol)?,
                FromProbe::Ask { id, question } => {
                    let t0 = Instant::now();
                    answers.push(ToProbe::Answer { id, answer: host.answer(&question) });
                    answering += t0.elapsed();
                }
                FromProbe::Done { facts } => {
                    end_phase(phase, since, &mut answering);
                    if facts as usize != t.facts.len() {
                        return Err(HarnessError::Protocol(format!(
                            "the probe says it sent {facts} facts, {} arrived",
                            t.facts.len()
                        )));
                    }
                    return Ok(t);
                }
                FromProbe::Fatal { stage, error } => {
                    return Err(with_stderr(HarnessError::Protocol(format!("{stage} failed: {error}")), streams));
                }
                FromProbe::SysctlValues { .. } => {
                    return Err(with_stderr(
                        HarnessError::Protocol(format!(
                            "line {}: sysctl values that no one asked for (only a holder sends them, when asked)",
                            streams.lines
                        )),
                        streams,
                    ));
                }
            }
        }
        if !answers.is_empty() {
            // The write is part of answering, as it was when each answer went out on its own.
            let t0 = Instant::now();
            send_all(p, &std::mem::take(&mut answers)).map_err(|e| with_stderr(e, streams))?;
            answering += t0.elapsed();
        }
        if streams.out_eof {
            let status = p.wait_until(deadline).map(describe).unwrap_or_else(|e| e.to_string());
            streams.finish(p, deadline);
            return Err(with_stderr(
                HarnessError::Protocol(format!(
                    "the probe ended ({status}) after {} lines, before `done`",
                    streams.lines
                )),
                streams,
            ));
        }
        if !streams.pump(p, deadline)? {
            return Err(with_stderr(
                HarnessError::Timeout {
                    after: started.elapsed(),
                    during: format!("waiting for the probe (after {} lines)", streams.lines),
                },
                streams,
            ));
        }
    }
}

/// Has a holder (a container whose conversation is over, kept for a joiner) read `paths` under
/// /proc/sys in its namespaces: asks with [`ToProbe::ReadSysctls`] and waits for its
/// [`FromProbe::SysctlValues`].
pub fn ask_holder(
    p: &mut ProbeProcess,
    streams: &mut Streams,
    paths: &[String],
    deadline: Instant,
) -> Result<Vec<Option<String>>, HarnessError> {
    send(p, &ToProbe::ReadSysctls { paths: paths.to_vec() })?;
    loop {
        if let Some(line) = streams.next_line()? {
            return match wire::decode::<FromProbe>("holder message", streams.lines, &line) {
                Ok(FromProbe::SysctlValues { values }) if values.len() == paths.len() => Ok(values),
                Ok(other) => Err(HarnessError::Protocol(format!("the holder answered {other:?} to a sysctl read"))),
                Err(e) => Err(HarnessError::Protocol(e.to_string())),
            };
        }
        if streams.out_eof {
            return Err(HarnessError::Protocol("the holder ended before it read the sysctls".into()));
        }
        if !streams.pump(p, deadline)? {
            return Err(HarnessError::Protocol("timed out waiting for the holder to read the sysctls".into()));
        }
    }
}

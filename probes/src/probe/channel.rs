//! The probe's end of the wire: JSON lines in on fd 0, out on fd 1.
//!
//! Facts are sent in batches: [`Channel::fact`] only encodes one, and the batch goes out in one
//! write before the probe waits for the harness ([`Channel::ask`]) and with its `done`
//! ([`Channel::done`]). A case's forty-odd facts were forty writes, each waking the harness on the
//! other CPU to read and decode one line while the probe went on; batched, the harness wakes once
//! per question. A probe that dies between two questions loses the facts since the last one, and
//! the harness reports the death either way ("the probe ended ... before `done`").
//!
//! A question whose answer the probe needs only later is sent ahead ([`Channel::ask_ahead`]): the
//! probe goes on with steps that ask nothing while the harness works on it (a mount, an unmount's
//! RCU grace period, a sysctl comparison), and reads the answer when it needs it
//! ([`Channel::answers`]); nothing else is asked or received meanwhile, so answers still arrive
//! in the order asked.
//!
//! Lines are read a byte at a time from std's stdin, whose shared buffer reads ahead whatever the
//! pipe holds. That is only ever what the probe is about to read: the harness writes the hello,
//! and then only the answers to questions asked (those asked together, answered together). So
//! when the probe re-executes itself into a new time namespace, having read its hello and asked
//! nothing, no line is left in the buffer for the old image to lose.

use std::io::{self, Read, Write};

use crate::wire::{self, Fact, FromProbe, HostAnswer, HostQuestion, ToProbe};

use super::error::ProbeError;

/// Reads one line from stdin without reading past its newline; `None` at end of file.
pub fn read_line_unbuffered() -> io::Result<Option<String>> {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stdin.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(line).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one message and flushes it, so the harness sees it before the probe blocks.
pub fn send(msg: &FromProbe) -> Result<(), ProbeError> {
    write_out(&wire::encode(msg))
}

/// Writes encoded lines to stdout and flushes them.
fn write_out(lines: &str) -> Result<(), ProbeError> {
    let mut out = io::stdout().lock();
    out.write_all(lines.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| ProbeError::Io { what: "write to stdout".into(), source })
}

/// The conversation after the hello: facts out, questions out and answers in.
#[derive(Debug, Default)]
pub struct Channel {
    next_id: u32,
    facts: u32,
    lines_in: usize,
    /// Encoded messages not yet written (see the module's docs).
    pending: String,
    /// The ids of questions sent ahead and not yet answered ([`Channel::ask_ahead`]).
    ahead: Option<std::ops::Range<u32>>,
}

/// Questions sent with [`Channel::ask_ahead`] (the channel keeps their ids: one sending at a
/// time), whose answers [`Channel::answers`] reads.
#[derive(Debug)]
#[must_use = "the answers must be read before anything else is asked"]
pub struct Ahead(());

impl Channel {
    /// `lines_in` is how many lines were already read (the hello), for error positions.
    pub fn new(lines_in: usize) -> Self {
        Channel { next_id: 1, facts: 0, lines_in, pending: String::new(), ahead: None }
    }

    /// Queues a fact; it goes out with the next question, [`Channel::flush`] or `done`.
    pub fn fact(&mut self, fact: Fact) -> Result<(), ProbeError> {
        self.facts += 1;
        self.pending.push_str(&wire::encode(&FromProbe::Fact { fact }));
        Ok(())
    }

    /// Writes what is queued, before a step that could end the probe (an exercise the kernel
    /// may kill it in) or keep it long.
    pub fn flush(&mut self) -> Result<(), ProbeError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        write_out(&batch)
    }

    /// Sends the queued facts and the `done` that counts them.
    pub fn done(&mut self) -> Result<(), ProbeError> {
        let done = wire::encode(&FromProbe::Done { facts: self.facts });
        self.pending.push_str(&done);
        self.flush()
    }

    /// Asks the host and waits for its answer.
    pub fn ask(&mut self, question: HostQuestion) -> Result<HostAnswer, ProbeError> {
        let mut answers = self.ask_all(vec![question])?;
        Ok(answers.remove(0))
    }

    /// Asks the host these questions in one write and waits for their answers, in order: for
    /// questions of which none depends on another's answer or on anything the probe would do
    /// between them. The host answers them in order, in one write, so the probe wakes once for
    /// all (see the harness's `conversation::converse`).
    pub fn ask_all(&mut self, questions: Vec<HostQuestion>) -> Result<Vec<HostAnswer>, ProbeError> {
        let ahead = self.ask_ahead(questions)?;
        self.answers(ahead)
    }

    /// Sends these questions now, as [`Channel::ask_all`] does, without waiting: the probe goes
    /// on with steps that need none of the answers while the host works on them (a wait for an
    /// RCU grace period, say), and reads them with [`Channel::answers`] when it needs them.
    /// Nothing else may be asked or received meanwhile: the answers come first, in order.
    pub fn ask_ahead(&mut self, questions: Vec<HostQuestion>) -> Result<Ahead, ProbeError> {
        if let Some(ids) = &self.ahead {
            return Err(ProbeError::Protocol(format!("asked again before reading the answers to questions {ids:?}")));
        }
        let first = self.next_id;
        for question in questions {
            let id = self.next_id;
            self.next_id += 1;
            self.pending.push_str(&wire::encode(&FromProbe::Ask { id, question }));
        }
        self.flush()?;
        self.ahead = Some(first..self.next_id);
        Ok(Ahead(()))
    }

    /// Waits for the answers to questions sent with [`Channel::ask_ahead`], in order.
    pub fn answers(&mut self, _sent: Ahead) -> Result<Vec<HostAnswer>, ProbeError> {
        // Set by the `ask_ahead` that made the token, and taken only here.
        let ids = self.ahead.take().unwrap_or_default();
        ids.map(|id| match self.receive_line()? {
            ToProbe::Answer { id: got, answer } if got == id => Ok(answer),
            other => Err(ProbeError::Protocol(format!("expected the answer to question {id}, got {other:?}"))),
        })
        .collect()
    }

    /// The next message from the harness (none may be an answer still awaited).
    pub fn receive(&mut self) -> Result<ToProbe, ProbeError> {
        if let Some(ids) = &self.ahead {
            return Err(ProbeError::Protocol(format!("the answers to questions {ids:?} are still to be read")));
        }
        self.receive_line()
    }

    fn receive_line(&mut self) -> Result<ToProbe, ProbeError> {
        let line = read_line_unbuffered()
            .map_err(|source| ProbeError::Io { what: "read stdin".into(), source })?
            .ok_or_else(|| ProbeError::Protocol("stdin closed by the harness".into()))?;
        self.lines_in += 1;
        wire::decode("harness message", self.lines_in, &line).map_err(|e| ProbeError::Protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_asked_or_received_while_answers_are_awaited() {
        let mut ch = Channel::new(1);
        // No question: nothing is written, and its (no) answers are read without reading stdin.
        let ahead = ch.ask_ahead(Vec::new()).expect("nothing to write");
        assert!(matches!(ch.ask_ahead(Vec::new()), Err(ProbeError::Protocol(_))), "asked again");
        assert!(matches!(ch.receive(), Err(ProbeError::Protocol(_))), "received meanwhile");
        assert_eq!(ch.answers(ahead).expect("no answers to read"), Vec::new());
        let again = ch.ask_ahead(Vec::new()).expect("the answers were read");
        assert_eq!(ch.answers(again).expect("no answers to read"), Vec::new());
    }
}

//! A tiny blocking RESP2 client for test assertions (PTTL, WAIT, CLUSTER NODES …).
//!
//! Tests use it to look at Redis from the side, independently of the client under test.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// A nil bulk string or nil array.
    Nil,
    /// A simple string (`+OK`).
    Status(String),
    /// An error reply (`-ERR …`).
    Error(String),
    /// An integer reply.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// An array reply.
    Array(Vec<Reply>),
}

impl Reply {
    /// The integer, if this is an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text of a status, error or bulk reply (lossy UTF-8), if it is one.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Reply::Status(s) | Reply::Error(s) => Some(s.clone()),
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Sends one command to `127.0.0.1:port` on a fresh connection and reads one reply.
///
/// ```no_run
/// use memstache_harness::redis::{command, Reply};
/// let r = command(6400, &["PING"]).unwrap();
/// assert_eq!(r, Reply::Status("PONG".into()));
/// ```
pub fn command(port: u16, args: &[&str]) -> io::Result<Reply> {
    command_auth(port, None, args)
}

/// [`command`] after `AUTH password` on the same connection, when a password is given.
pub(crate) fn command_auth(port: u16, password: Option<&str>, args: &[&str]) -> io::Result<Reply> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut out = Vec::new();
    if let Some(pw) = password {
        encode(&mut out, &["AUTH", pw]);
    }
    encode(&mut out, args);
    (&stream).write_all(&out)?;
    let mut reader = BufReader::new(stream);
    if password.is_some() {
        let auth = read_reply(&mut reader)?;
        if let Reply::Error(_) = auth {
            return Ok(auth);
        }
    }
    read_reply(&mut reader)
}

fn encode(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (tag, rest) = line.split_at_checked(1).ok_or_else(|| bad("empty reply"))?;
    let num = || rest.parse::<i64>().map_err(|_| bad("bad length"));
    match tag {
        "+" => Ok(Reply::Status(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => Ok(Reply::Int(num()?)),
        "$" => {
            let n = num()?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let n = usize::try_from(n).map_err(|_| bad("bad length"))?;
            let mut buf = vec![0u8; n + 2];
            io::Read::read_exact(r, &mut buf)?;
            buf.truncate(n);
            Ok(Reply::Bulk(buf))
        }
        "*" => {
            let n = num()?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(read_reply(r)?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(bad("unknown reply type")),
    }
}

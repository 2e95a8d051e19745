//! Just enough of the PostgreSQL frontend/backend protocol (version 3.0, simple query,
//! trust authentication) to run SQL on a server this crate started, without needing any
//! client program next to the server binaries: some builds ship only `initdb`, `pg_ctl`
//! and `postgres` (no `createdb`, no `psql`).
//!
//! Only what localpg's servers need is handled: no TLS, no passwords (they use trust
//! authentication), text results.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::tail_one_line;
use crate::Error;

/// Bound on connecting over TCP.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each read or write; `CREATE DATABASE` on a busy machine can take a while.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// The protocol version 3.0, as sent in the startup message.
const PROTOCOL_3_0: i32 = 196_608;
/// Bound on one backend message: far above anything a localpg query returns.
const MAX_MESSAGE: usize = 64 << 20;

/// Where to reach the server: a unix socket file or TCP on 127.0.0.1.
pub(crate) enum Target<'a> {
    Socket(&'a Path),
    Tcp(u16),
}

/// One result row: each column as text, `None` for SQL NULL.
pub(crate) type Row = Vec<Option<String>>;

/// Runs `sql` (one or more statements, simple query protocol) as `user` on `database` and
/// returns the rows of every statement, in order.
///
/// A server error becomes [`Error::Command`] naming `what`, with the severity, the
/// SQLSTATE and the message on one line.
pub(crate) fn simple_query(
    target: Target<'_>,
    user: &str,
    database: &str,
    sql: &str,
    what: &str,
) -> Result<Vec<Row>, Error> {
    let io_err = |e: io::Error| Error::io(format!("{what}: talking to PostgreSQL"), e);
    let mut conn = Conn::open(&target).map_err(io_err)?;
    let mut startup = Vec::new();
    startup.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (key, value) in [("user", user), ("database", database)] {
        put_cstr(&mut startup, key, what)?;
        put_cstr(&mut startup, value, what)?;
    }
    startup.push(0);
    conn.send(None, &startup).map_err(io_err)?;
    conn.until_ready(what, &mut Vec::new())?;

    let mut query = Vec::new();
    put_cstr(&mut query, sql, what)?;
    conn.send(Some(b'Q'), &query).map_err(io_err)?;
    let mut rows = Vec::new();
    let outcome = conn.until_ready(what, &mut rows);
    // Terminate politely; the server copes if this is lost.
    let _ = conn.send(Some(b'X'), &[]);
    outcome.map(|()| rows)
}

/// A connection, over either transport.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

struct Conn {
    stream: Stream,
}

impl Conn {
    fn open(target: &Target<'_>) -> io::Result<Conn> {
        let stream = match target {
            Target::Socket(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                Stream::Unix(s)
            }
            Target::Tcp(port) => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
                let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        Ok(Conn { stream })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Unix(s) => s.write_all(bytes),
            Stream::Tcp(s) => s.write_all(bytes),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Unix(s) => s.read_exact(buf),
            Stream::Tcp(s) => s.read_exact(buf),
        }
    }

    /// Sends one frontend message (the startup message has no type byte).
    fn send(&mut self, kind: Option<u8>, body: &[u8]) -> io::Result<()> {
        let len = i32::try_from(body.len() + 4)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
        let mut msg = Vec::with_capacity(body.len() + 5);
        msg.extend(kind);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(body);
        self.write_all(&msg)
    }

    /// Reads one backend message: its type and body.
    fn receive(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.read_exact(&mut head)?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let len = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .filter(|l| *l <= MAX_MESSAGE)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad message length {len}"),
                )
            })?;
        let mut body = vec![0u8; len];
        self.read_exact(&mut body)?;
        Ok((head[0], body))
    }

    /// Reads messages until ReadyForQuery, collecting data rows into `rows`; the first
    /// server error (after which the server still sends ReadyForQuery) is returned.
    fn until_ready(&mut self, what: &str, rows: &mut Vec<Row>) -> Result<(), Error> {
        let mut failure = None;
        loop {
            let (kind, body) = self
                .receive()
                .map_err(|e| Error::io(format!("{what}: reading from PostgreSQL"), e))?;
            match kind {
                b'Z' => return failure.map_or(Ok(()), Err),
                b'E' => {
                    let error = command_error(what, server_error(&body));
                    // After a FATAL error the server closes the connection instead of
                    // sending ReadyForQuery.
                    if is_fatal(&body) {
                        return Err(error);
                    }
                    failure.get_or_insert(error);
                }
                b'R' => {
                    let code = body
                        .get(..4)
                        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    if code != Some(0) {
                        return Err(command_error(
                            what,
                            format!(
                                "the server asks for authentication (request {}); localpg's servers use trust",
                                code.map_or_else(|| "?".to_string(), |c| c.to_string())
                            ),
                        ));
                    }
                }
                b'D' => rows.push(
                    data_row(&body).ok_or_else(|| command_error(what, "malformed data row"))?,
                ),
                // ParameterStatus, BackendKeyData, RowDescription, CommandComplete,
                // EmptyQueryResponse, NoticeResponse, NegotiateProtocolVersion.
                _ => {}
            }
        }
    }
}

fn command_error(what: &str, detail: impl Into<String>) -> Error {
    Error::Command {
        program: what.to_string(),
        detail: detail.into(),
    }
}

fn put_cstr(buf: &mut Vec<u8>, s: &str, what: &str) -> Result<(), Error> {
    if s.contains('\0') {
        return Err(command_error(what, "a NUL character cannot be sent"));
    }
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    Ok(())
}

/// The fields of an ErrorResponse: (field type, value).
fn fields(body: &[u8]) -> impl Iterator<Item = (u8, String)> + '_ {
    body.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
}

fn is_fatal(body: &[u8]) -> bool {
    fields(body).any(|(t, v)| t == b'V' && (v == "FATAL" || v == "PANIC"))
}

/// "ERROR 42P04: database "x" already exists", on one line.
fn server_error(body: &[u8]) -> String {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    for (kind, value) in fields(body) {
        match kind {
            b'V' => severity = value,
            b'S' if severity.is_empty() => severity = value,
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    tail_one_line(&format!("{severity} {code}: {message}"), usize::MAX)
}

/// A DataRow's columns as text.
fn data_row(body: &[u8]) -> Option<Row> {
    let count = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut at = 2usize;
    let mut row = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        let value = body.get(at..at.checked_add(len)?)?;
        at += len;
        row.push(Some(String::from_utf8_lossy(value).into_owned()));
    }
    Some(row)
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_ident("t1"), "\"t1\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn data_rows_and_errors_are_decoded() {
        // Two columns: "42" and NULL.
        let body = [0, 2, 0, 0, 0, 2, b'4', b'2', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(data_row(&body), Some(vec![Some("42".into()), None]));
        assert_eq!(data_row(&[0, 1, 0, 0, 0, 9, b'x']), None, "truncated");
        let error = b"SERROR\0VERROR\0C42P04\0Mdatabase \"x\" already exists\0\0";
        assert_eq!(
            server_error(error),
            "ERROR 42P04: database \"x\" already exists"
        );
        assert!(!is_fatal(error));
        assert!(is_fatal(b"SFATAL\0VFATAL\0C3D000\0Mno such database\0\0"));
    }
}

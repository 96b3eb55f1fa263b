//! The machine's loopback floor for the plugin benchmark: a blocking TCP server that answers
//! every read with a fixed `{}` HTTP response and does nothing else. No HTTP server can beat it
//! on the same machine, so it shows how much of a plugin's latency is the plugin's own.
//! Built by bench/run_plugin with plain rustc (no dependencies).

use std::io::{Read, Write};
use std::net::TcpListener;

const REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "10998".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(REPLY).is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}

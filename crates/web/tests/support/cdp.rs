//! A small headless-Chromium driver over the DevTools protocol: a WebSocket client of its own
//! (std only, loopback only) and the handful of protocol calls the browser tests need — open a
//! page, wait for a selector, read text and attributes, click and type with real input events,
//! and capture PNG screenshots.
//!
//! Chromium is started with a fresh profile in a temporary folder, with background networking
//! off and a host resolver that resolves nothing, so the only pages it can reach are the
//! 127.0.0.1 servers the tests start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one protocol call or one wait may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(25);

#[derive(Debug)]
pub struct CdpError(pub String);

impl std::fmt::Display for CdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CdpError {}

impl From<std::io::Error> for CdpError {
    fn from(err: std::io::Error) -> Self {
        CdpError(format!("i/o: {err}"))
    }
}

pub type Result<T> = std::result::Result<T, CdpError>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(CdpError(message.into()))
}

/// The Chromium executable: `CODECLAB_CHROMIUM` if set, else the first of the usual names on
/// PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CODECLAB_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A WebSocket client connection (RFC 6455), text messages only.
struct WebSocket {
    stream: TcpStream,
    mask_seed: u32,
}

impl WebSocket {
    fn connect(port: u16, path: &str) -> Result<WebSocket> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        stream.set_nodelay(true)?;
        // The key only proves to the server that the client speaks WebSocket; the reply is not
        // checked against it because this client talks to a local process it started itself.
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: Y29kZWNsYWItY2RwLWtleQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut status = String::new();
        reader.read_line(&mut status)?;
        if !status.contains(" 101 ") {
            return fail(format!("DevTools refused the WebSocket: {}", status.trim()));
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return fail("DevTools closed the connection during the handshake");
            }
            if line == "\r\n" {
                break;
            }
        }
        if !reader.buffer().is_empty() {
            return fail("DevTools sent data before the handshake ended");
        }
        let mask_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.subsec_nanos());
        Ok(WebSocket { stream, mask_seed })
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // Client frames must be masked; a xorshift step gives a fresh key per frame.
        self.mask_seed ^= self.mask_seed << 13;
        self.mask_seed ^= self.mask_seed >> 17;
        self.mask_seed ^= self.mask_seed << 5;
        let mask = self.mask_seed.to_be_bytes();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame)?;
        Ok(())
    }

    fn send_text(&mut self, text: &str) -> Result<()> {
        self.send_frame(0x1, text.as_bytes())
    }

    /// The next whole text message (fragments joined; pings answered).
    fn receive_text(&mut self) -> Result<String> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head)?;
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut ext = [0u8; 2];
                    self.stream.read_exact(&mut ext)?;
                    u64::from(u16::from_be_bytes(ext))
                }
                127 => {
                    let mut ext = [0u8; 8];
                    self.stream.read_exact(&mut ext)?;
                    u64::from_be_bytes(ext)
                }
                short => u64::from(short),
            };
            // Screenshots of long pages are a few MiB; anything far larger is a broken stream.
            if len > 512 << 20 {
                return fail(format!("a WebSocket frame of {len} bytes"));
            }
            let mut mask = [0u8; 4];
            if masked {
                self.stream.read_exact(&mut mask)?;
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload)?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            match opcode {
                // Continuation, text and binary frames.
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message)
                            .or_else(|_| fail("DevTools sent a message that is not UTF-8"));
                    }
                }
                0x8 => return fail("DevTools closed the WebSocket"),
                0x9 => self.send_frame(0xA, &payload)?,
                _ => {}
            }
        }
    }
}

/// A running headless Chromium and its DevTools connection.
pub struct Browser {
    child: Child,
    socket: WebSocket,
    next_id: u64,
    // Held for its Drop: the profile folder is removed after Chromium exits.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `executable` headless with a throw-away profile and connects to it.
    pub fn launch(executable: &Path) -> Result<Browser> {
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(executable)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--disable-domain-reliability",
                "--disable-client-side-phishing-detection",
                "--no-pings",
                "--metrics-recording-only",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1280,900",
                // A page left for the next keeps its open event stream while it sits in the
                // back/forward cache, and six such streams exhaust the per-host connections.
                "--disable-features=BackForwardCache",
                // Every host name fails to resolve: only literal loopback addresses load.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Chromium writes the port it picked and the browser's WebSocket path to this file.
        let port_file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next())
                    && let Ok(port) = port.trim().parse::<u16>()
                {
                    break (port, path.trim().to_string());
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return fail(format!("chromium exited at start: {status}"));
            }
            if started.elapsed() > CALL_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return fail("chromium did not open its DevTools port");
            }
            std::thread::sleep(POLL_INTERVAL);
        };
        let socket = match WebSocket::connect(port, &path) {
            Ok(socket) => socket,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        };
        Ok(Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        })
    }

    /// Sends one protocol command (to a page when `session` is set) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket.send_text(&message.to_string())?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return fail(format!("{method}: no answer"));
            }
            let reply: Value = serde_json::from_str(&self.socket.receive_text()?)
                .or_else(|e| fail(format!("{method}: unreadable reply: {e}")))?;
            // Events (no id) and late answers to other calls are skipped.
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(error) = reply.get("error") {
                return fail(format!("{method}: {error}"));
            }
            return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Opens a new tab (1280x900) and attaches to it.
    pub fn new_page(&mut self) -> Result<Page<'_>> {
        let created = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let Some(target) = created["targetId"].as_str().map(str::to_string) else {
            return fail(format!("Target.createTarget answered {created}"));
        };
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )?;
        let Some(session) = attached["sessionId"].as_str().map(str::to_string) else {
            return fail(format!("Target.attachToTarget answered {attached}"));
        };
        let mut page = Page {
            browser: self,
            session,
        };
        page.call("Page.enable", json!({}))?;
        page.call("Runtime.enable", json!({}))?;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Page<'b> {
    browser: &'b mut Browser,
    session: String,
}

/// A JavaScript string literal holding `text`.
fn js_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

impl Page<'_> {
    fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.browser.call(Some(&self.session), method, params)
    }

    /// Evaluates a JavaScript expression (awaiting a promise) and returns its JSON value.
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let reply = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(exception) = reply.get("exceptionDetails") {
            return fail(format!("`{expression}` threw: {exception}"));
        }
        Ok(reply["result"]["value"].clone())
    }

    /// Loads `url` and waits until the document and its sub-resources have loaded.
    pub fn goto(&mut self, url: &str) -> Result<()> {
        let reply = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = reply.get("errorText").and_then(Value::as_str) {
            return fail(format!("loading {url}: {error}"));
        }
        self.wait_until(
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                { js_string(url) }
            ),
            &format!("{url} to load"),
        )
    }

    /// Polls a JavaScript condition until it is true.
    pub fn wait_until(&mut self, condition: &str, what: &str) -> Result<()> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            // A navigation in progress can destroy the context the check runs in: try again.
            if let Ok(Value::Bool(true)) = self.eval(&format!("Boolean({condition})")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return fail(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until an element matches `selector`.
    pub fn wait_for(&mut self, selector: &str) -> Result<()> {
        self.wait_until(
            &format!("document.querySelector({})", js_string(selector)),
            &format!("`{selector}`"),
        )
    }

    /// Whether an element matches `selector` now.
    pub fn exists(&mut self, selector: &str) -> Result<bool> {
        Ok(self.eval(&format!(
            "document.querySelector({}) !== null",
            js_string(selector)
        ))? == Value::Bool(true))
    }

    /// The rendered text of the first element matching `selector`.
    pub fn text(&mut self, selector: &str) -> Result<String> {
        match self.eval(&format!(
            "(e => e && e.innerText)(document.querySelector({}))",
            js_string(selector)
        ))? {
            Value::String(text) => Ok(text),
            _ => fail(format!("no element `{selector}`")),
        }
    }

    /// An attribute of the first element matching `selector` (`None` when it has none).
    pub fn attribute(&mut self, selector: &str, name: &str) -> Result<Option<String>> {
        let value = self.eval(&format!(
            "(e => e ? [e.getAttribute({})] : null)(document.querySelector({}))",
            js_string(name),
            js_string(selector)
        ))?;
        match value {
            Value::Array(mut items) => Ok(items.pop().and_then(|v| v.as_str().map(String::from))),
            _ => fail(format!("no element `{selector}`")),
        }
    }

    /// The whole document as HTML, as the browser holds it now (after scripts ran).
    pub fn html(&mut self) -> Result<String> {
        match self.eval("document.documentElement.outerHTML")? {
            Value::String(html) => Ok(html),
            other => fail(format!("outerHTML was {other}")),
        }
    }

    /// Clicks the first element matching `selector` with real mouse events, at the centre of
    /// its first box (an inline element wrapped over two lines has nothing at its overall
    /// centre).
    pub fn click(&mut self, selector: &str) -> Result<()> {
        self.wait_for(selector)?;
        let centre = self.eval(&format!(
            "(e => {{ e.scrollIntoView({{block: 'center'}}); \
             const r = e.getClientRects()[0] || e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2, r.width * r.height]; }})\
             (document.querySelector({}))",
            js_string(selector)
        ))?;
        let (Some(x), Some(y), Some(area)) =
            (centre[0].as_f64(), centre[1].as_f64(), centre[2].as_f64())
        else {
            return fail(format!("`{selector}` has no box: {centre}"));
        };
        if area <= 0.0 {
            return fail(format!("`{selector}` is not visible"));
        }
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// Clicks into the field matching `selector`, clears it and types `text`.
    pub fn type_into(&mut self, selector: &str, text: &str) -> Result<()> {
        self.click(selector)?;
        self.eval(&format!(
            "document.querySelector({}).value = ''",
            js_string(selector)
        ))?;
        self.call("Input.insertText", json!({"text": text}))?;
        Ok(())
    }

    /// A PNG of the whole page (beyond the viewport too).
    pub fn screenshot(&mut self) -> Result<Vec<u8>> {
        let reply = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )?;
        let Some(data) = reply["data"].as_str() else {
            return fail("Page.captureScreenshot returned no data");
        };
        decode_base64(data)
    }
}

/// Standard base64 (with padding), as the protocol sends binary data.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let Some(v) = value(c) else {
                return fail("screenshot data is not base64");
            };
            acc |= v << (18 - 6 * i);
        }
        let produced = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return fail("screenshot data has a truncated base64 group"),
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + produced]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round_numbers() {
        assert_eq!(super::decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(super::decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(super::decode_base64("TQ==").unwrap(), b"M");
        assert!(super::decode_base64("T").is_err());
    }
}

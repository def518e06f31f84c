//! Bounded capture of a stream: the first and last bytes, with a count of what was dropped.
//!
//! A command can print gigabytes; the model needs the start (what ran) and the end (how it
//! failed). [`HeadTailBuffer`] keeps half its budget for each, in constant memory however
//! much is pushed through it.

use std::collections::VecDeque;

/// Keeps at most `cap` bytes: the first `cap / 2` and the last `cap - cap / 2`.
#[derive(Debug)]
pub struct HeadTailBuffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl HeadTailBuffer {
    pub fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self {
            // Grown as bytes come: most streams are short (a command's stderr is often
            // empty), and 64 KiB set aside per stream made the heap grow and shrink
            // every command.
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap: cap - head_cap,
            total: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.head_cap {
            let take = (self.head_cap - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes pushed in all.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Bytes pushed but not kept.
    pub fn dropped_bytes(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }

    /// The kept bytes as text (head then tail, no marker), for looking through them
    /// without giving the buffer up.
    pub fn peek_text(&self) -> String {
        let mut bytes = self.head.clone();
        bytes.extend(self.tail.iter());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The kept text, with a marker where bytes were dropped. Invalid UTF-8 (including a
    /// character cut at the seam) is replaced, never an error.
    pub fn into_text(self) -> String {
        let dropped = self.dropped_bytes();
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if dropped > 0 {
            text.push_str(&format!("\n[... {dropped} bytes truncated ...]\n"));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

/// Cuts `text` to at most `max_bytes` (on a character boundary), keeping head and tail.
pub fn truncate_middle(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut buffer = HeadTailBuffer::new(max_bytes);
    buffer.push(text.as_bytes());
    buffer.into_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_kept_whole() {
        let mut buf = HeadTailBuffer::new(100);
        buf.push(b"hello ");
        buf.push(b"world");
        assert_eq!(buf.dropped_bytes(), 0);
        assert_eq!(buf.into_text(), "hello world");
    }

    #[test]
    fn long_input_keeps_head_and_tail_with_marker() {
        let mut buf = HeadTailBuffer::new(10);
        for chunk in [b"abc".as_slice(), b"defghij", b"klmnopqrstuvwxyz"] {
            buf.push(chunk);
        }
        assert_eq!(buf.total_bytes(), 26);
        assert_eq!(buf.dropped_bytes(), 16);
        assert_eq!(
            buf.into_text(),
            "abcde\n[... 16 bytes truncated ...]\nvwxyz"
        );
    }

    #[test]
    fn byte_at_a_time_matches_one_push() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut one = HeadTailBuffer::new(64);
        one.push(&data);
        let mut many = HeadTailBuffer::new(64);
        for byte in &data {
            many.push(std::slice::from_ref(byte));
        }
        assert_eq!(one.into_text(), many.into_text());
    }

    #[test]
    fn truncate_middle_respects_char_boundaries() {
        let text = "é".repeat(100);
        let cut = truncate_middle(&text, 21);
        assert!(cut.contains("truncated"));
        assert!(cut.starts_with("éééé"));
        assert!(cut.ends_with("éééé"));
    }
}

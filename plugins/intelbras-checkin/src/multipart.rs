//! Splits a multipart body into parts without copying them.
//!
//! Intelbras terminals (Dahua firmware) push `multipart/x-mixed-replace`
//! bodies, which are not `multipart/form-data`: parts often lack
//! `Content-Disposition`, may carry their own `Content-Length`, and lines
//! may end in a bare LF. The maintained multipart crates parse async
//! streams of form data, so this small parser works on the whole body in
//! memory instead. Image parts are returned as slices and never copied.

/// One part: its headers (names lowercase) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Returns the media type without parameters, lowercase, or an empty string when absent.
    pub fn content_type(&self) -> String {
        self.header("content-type").map(essence).unwrap_or_default()
    }
}

/// Returns the media type of a `Content-Type` value, lowercase, without parameters.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Returns the `boundary` parameter of a `Content-Type` value, unquoted.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Splits `body` at `--boundary` lines. Text before the first delimiter
/// and after the closing `--boundary--` is ignored. A part whose
/// `Content-Length` fits in the body is cut at that length, so a JPEG that
/// happens to contain the delimiter bytes does not split.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Vec<Part<'a>> {
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut parts = Vec::new();

    let Some(mut position) = finder.find(body) else { return parts };
    loop {
        let after_delimiter = position + delimiter.len();
        if body[after_delimiter..].starts_with(b"--") {
            break;
        }
        let Some(line_end) = memchr::memchr(b'\n', &body[after_delimiter..]) else { break };
        let part_start = after_delimiter + line_end + 1;

        let (headers, body_start) = read_headers(body, part_start);
        let declared = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
            .filter(|length| body_start + length <= body.len());

        let next = match declared {
            Some(length) => finder.find(&body[body_start + length..]).map(|offset| body_start + length + offset),
            None => finder.find(&body[body_start..]).map(|offset| body_start + offset),
        };
        let body_end = match (declared, next) {
            (Some(length), _) => body_start + length,
            (None, Some(next)) => trim_line_break(body, body_start, next),
            (None, None) => body.len(),
        };
        parts.push(Part { headers, body: &body[body_start..body_end] });

        match next {
            Some(next) => position = next,
            None => break,
        }
    }
    parts
}

/// Reads header lines from `start` up to the first empty line; returns them
/// and the offset of the part's body. A part without headers starts its
/// body right after the delimiter line.
fn read_headers(body: &[u8], start: usize) -> (Vec<(String, String)>, usize) {
    let mut headers = Vec::new();
    let mut cursor = start;
    while cursor < body.len() {
        let line_end = memchr::memchr(b'\n', &body[cursor..]).map_or(body.len(), |offset| cursor + offset);
        let line = trim_cr(&body[cursor..line_end]);
        let next = (line_end + 1).min(body.len());
        if line.is_empty() {
            return (headers, next);
        }
        let Some((name, value)) = std::str::from_utf8(line).ok().and_then(|line| line.split_once(':')) else {
            // Not a header line: the part has no headers and this is its body.
            return (Vec::new(), start);
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        cursor = next;
    }
    (headers, body.len())
}

/// Returns the end of a part's body: `next` (the next delimiter) minus the line break before it.
fn trim_line_break(body: &[u8], start: usize, next: usize) -> usize {
    let mut end = next;
    if end > start && body[end - 1] == b'\n' {
        end -= 1;
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_parameter_is_read() {
        assert_eq!(boundary("multipart/x-mixed-replace; boundary=myboundary").as_deref(), Some("myboundary"));
        assert_eq!(boundary("multipart/form-data; charset=utf-8; Boundary=\"abc\"").as_deref(), Some("abc"));
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn parts_split_with_crlf() {
        let body = b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--b--\r\n";
        let parts = parts(body, "b");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type(), "text/plain");
        assert_eq!(parts[0].body, b"hello");
        assert_eq!(parts[1].content_type(), "image/jpeg");
        assert_eq!(parts[1].body, b"\xff\xd8\xff");
    }

    #[test]
    fn parts_split_with_bare_lf_and_no_closing_delimiter() {
        let body = b"preamble\n--b\nContent-Type: text/plain\n\n{\"a\":1}\n--b\nContent-Type: text/plain\n\nsecond";
        let parts = parts(body, "b");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, b"{\"a\":1}");
        assert_eq!(parts[1].body, b"second");
    }

    #[test]
    fn content_length_protects_image_containing_delimiter() {
        let image = b"\xff\xd8--b\r\nfake\xff\xd9";
        let mut body = format!("--b\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", image.len()).into_bytes();
        body.extend_from_slice(image);
        body.extend_from_slice(b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nafter\r\n--b--");
        let parts = parts(&body, "b");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, image);
        assert_eq!(parts[1].body, b"after");
    }

    #[test]
    fn part_without_headers_keeps_its_body() {
        let parts = parts(b"--b\r\nCode=AccessControl;action=Pulse\r\n--b--", "b");
        assert_eq!(parts.len(), 1);
        assert!(parts[0].headers.is_empty());
        assert_eq!(parts[0].body, b"Code=AccessControl;action=Pulse");
    }

    #[test]
    fn body_without_delimiter_has_no_parts() {
        assert!(parts(b"{\"Events\":[]}", "myboundary").is_empty());
    }
}

//! Reading AWS query-protocol XML answers.
//!
//! AWS's answers, and moto's imitations of them, differ in wrapping (real
//! STS puts `<Error>` directly in `<ErrorResponse>`, moto adds `<Errors>`),
//! so fields are looked up by the tail of their element path rather than
//! deserialized into one fixed shape. The document must still be well formed:
//! truncated or mismatched XML is an error, never a partial answer.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// The text of every element in a document, keyed by its path
/// (`AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId`).
#[derive(Debug)]
pub(crate) struct Document {
    root: String,
    fields: Vec<(String, String)>,
}

/// Documents deeper than this are not AWS answers.
const MAX_DEPTH: usize = 32;

impl Document {
    /// Parses `body`, which must be UTF-8 and well-formed XML with one root.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
        // Text is trimmed per element, not per event: entity references
        // split text into several events.
        let mut reader = Reader::from_str(text);
        let mut path: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut root = None;
        let mut fields = Vec::new();
        loop {
            let event = reader
                .read_event()
                .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
            match event {
                Event::Start(start) => {
                    if root.is_some() && path.is_empty() {
                        return Err("more than one root element".into());
                    }
                    if path.len() == MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                    }
                    let name = start.local_name().as_ref().to_owned();
                    root.get_or_insert_with(|| name.clone());
                    path.push(name);
                    texts.push(String::new());
                }
                Event::Empty(empty) => {
                    if path.is_empty() {
                        return Err("the document has no content".into());
                    }
                    let name = empty.local_name();
                    let name: &str = name.as_ref();
                    fields.push((format!("{}/{name}", path.join("/")), String::new()));
                }
                Event::End(_) => {
                    let text = texts.pop().unwrap_or_default();
                    fields.push((path.join("/"), text.trim().to_owned()));
                    path.pop();
                }
                Event::Text(t) => push_text(&mut texts, &t.xml10_content())?,
                Event::CData(c) => push_text(&mut texts, &c.xml10_content())?,
                Event::GeneralRef(reference) => {
                    let resolved = if reference.is_char_ref() {
                        reference
                            .resolve_char_ref()
                            .map_err(|e| format!("bad character reference: {e}"))?
                            .map(String::from)
                    } else {
                        resolve_predefined_entity(&reference).map(str::to_owned)
                    };
                    let resolved =
                        resolved.ok_or_else(|| format!("unknown entity `&{};`", &*reference))?;
                    push_text(&mut texts, &resolved)?;
                }
                Event::Eof => break,
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if !path.is_empty() {
            return Err(format!(
                "truncated XML: `{}` is never closed",
                path.join("/")
            ));
        }
        let root = root.ok_or("the body holds no XML element")?;
        Ok(Self { root, fields })
    }

    /// The root element's local name.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    /// The text of the first element whose path ends with `suffix`
    /// (`Credentials/AccessKeyId`).
    pub(crate) fn find(&self, suffix: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(path, _)| {
                path.strip_suffix(suffix)
                    .is_some_and(|head| head.is_empty() || head.ends_with('/'))
            })
            .map(|(_, text)| text.as_str())
    }
}

fn push_text(texts: &mut [String], text: &str) -> Result<(), String> {
    match texts.last_mut() {
        Some(current) => {
            current.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_by_path_suffix_and_unescapes() {
        let doc = Document::parse(
            br#"<?xml version="1.0"?><A xmlns="urn:x"><B><C>one &amp; two&#33;</C></B><C>top</C><D/></A>"#,
        )
        .expect("well formed");
        assert_eq!(doc.root(), "A");
        assert_eq!(doc.find("B/C"), Some("one & two!"));
        assert_eq!(doc.find("A/C"), Some("top"));
        assert_eq!(doc.find("D"), Some(""));
        assert_eq!(doc.find("X"), None);
        // A suffix must match whole element names.
        assert!(doc.find("/C").is_none());
    }

    #[test]
    fn truncated_and_mismatched_documents_are_errors() {
        for body in [
            &b"<A><B>x</B>"[..],
            b"<A><B>x</C></A>",
            b"",
            b"not xml at all",
            b"<A/><B/>",
            b"<A>&bogus;</A>",
            b"\xff\xfe<A/>",
        ] {
            assert!(
                Document::parse(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let body = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(Document::parse(body.as_bytes()).is_err());
    }
}

//! How an email leaves the host: SMTP (lettre) when `SMTP_URL` is set, else
//! an `.eml` file per outbox row in a local folder.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::store::OutboxEmail;

/// Why a send failed. `Permanent` failures cannot succeed on a retry.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

/// Where emails go.
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The URL without its password, for logs.
        described: String,
    },
    Folder(PathBuf),
}

impl Transport {
    /// An SMTP transport for `url`, with lettre's `from_url` meaning
    /// (`smtp://` plain, `smtp://…?tls=required` STARTTLS, `smtps://` TLS),
    /// plus `?tls=none` as an explicit name for plain `smtp://`.
    pub fn smtp(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let described = crate::store::redact_url(url);
        let lettre_url = without_tls_none(url).with_context(|| format!("invalid SMTP_URL `{described}`"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url)
            .with_context(|| format!("invalid SMTP_URL `{described}` (examples: smtp://user:pass@host:587?tls=required, smtps://user:pass@host:465, smtp://127.0.0.1:2525?tls=none)"))?
            .timeout(Some(timeout))
            .build();
        Ok(Self::Smtp { transport, described })
    }

    pub fn folder(path: impl Into<PathBuf>) -> Self {
        Self::Folder(path.into())
    }

    /// Where emails go, for the start-up log line.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { described, .. } => described.clone(),
            Self::Folder(path) => format!("folder {}", path.display()),
        }
    }

    /// Sends one outbox row as `from`. Returns once the SMTP server has
    /// accepted the message or the `.eml` file is in place.
    pub async fn send(&self, email: &OutboxEmail, from: &Mailbox) -> Result<(), SendError> {
        let message = build_message(email, from)?;
        match self {
            Self::Smtp { transport, .. } => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(error) if error.is_permanent() => Err(SendError::Permanent(format!("SMTP server rejected the email: {error}"))),
                Err(error) => Err(SendError::Transient(format!("SMTP send failed: {error}"))),
            },
            Self::Folder(dir) => write_eml(dir, email, message.formatted())
                .await
                .map_err(|error| SendError::Transient(format!("{error:#}"))),
        }
    }
}

/// The MIME message for an outbox row. Its `Message-ID` derives from the row
/// id, so a resend of the same row carries the same id.
pub fn build_message(email: &OutboxEmail, from: &Mailbox) -> Result<Message, SendError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|error| SendError::Permanent(format!("invalid recipient address `{}`: {error}", email.to)))?;
    let builder = Message::builder()
        .message_id(Some(message_id(email, from)))
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone());
    let built = match &email.body_html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.body_text.clone(), html.clone())),
        None => builder.singlepart(SinglePart::plain(email.body_text.clone())),
    };
    built.map_err(|error| SendError::Permanent(format!("cannot build the email: {error}")))
}

/// `<OUTBOX_ID@DOMAIN>`, with the sender's domain.
pub fn message_id(email: &OutboxEmail, from: &Mailbox) -> String {
    format!("<{}@{}>", email.id, from.email.domain())
}

/// Writes the message under a temporary name and renames it, so a reader
/// never sees half a file. The three file operations share one trip to the
/// blocking thread pool.
async fn write_eml(dir: &std::path::Path, email: &OutboxEmail, bytes: Vec<u8>) -> anyhow::Result<()> {
    let dir = dir.to_owned();
    let path = dir.join(format!("{}.eml", email.id));
    let partial = dir.join(format!(".{}.eml.partial", email.id));
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the outbox folder {}", dir.display()))?;
        std::fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))
    })
    .await?
}

/// Drops `tls=none` from the query, since lettre spells plain SMTP as no `tls` parameter.
fn without_tls_none(url: &str) -> anyhow::Result<String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let kept: Vec<&str> = query.split('&').filter(|pair| *pair != "tls=none" && !pair.is_empty()).collect();
    Ok(if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_none_becomes_plain_smtp() {
        assert_eq!(without_tls_none("smtp://127.0.0.1:2525?tls=none").unwrap(), "smtp://127.0.0.1:2525");
        assert_eq!(without_tls_none("smtp://h:587?tls=required").unwrap(), "smtp://h:587?tls=required");
        assert_eq!(without_tls_none("smtps://u:p@h").unwrap(), "smtps://u:p@h");
    }

    #[tokio::test]
    async fn smtp_urls_parse_and_bad_ones_are_named() {
        for url in ["smtp://127.0.0.1:2525?tls=none", "smtp://u:p@mail.example.org:587?tls=required", "smtps://u:p@mail.example.org"] {
            Transport::smtp(url, Duration::from_secs(5)).unwrap_or_else(|error| panic!("{url}: {error:#}"));
        }
        let error = Transport::smtp("smtp://u:secret@h?tls=sometimes", Duration::from_secs(5)).err().unwrap();
        let message = format!("{error:#}");
        assert!(message.contains("SMTP_URL"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}

//! Email templates: `ID.subject.txt`, `ID.txt` and an optional `ID.html` in
//! the templates folder (`TEMPLATES_DIR`), rendered with minijinja. The
//! templates shipped in the repository's `templates/` are built into the
//! binary, and a file in the folder overrides the built-in one of that name.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::store::NewEmail;

/// Templates built into the binary: (file name, text).
const BUILT_IN: &[(&str, &str)] = &[
    ("welcome_01.subject.txt", include_str!("../../../templates/welcome_01.subject.txt")),
    ("welcome_01.txt", include_str!("../../../templates/welcome_01.txt")),
    ("welcome_01.html", include_str!("../../../templates/welcome_01.html")),
];

/// Failure to render an email. The message names the template and
/// the missing part or variable.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid template_id `{0}`: use letters, digits, `_`, `-` and `.` only")]
    InvalidId(String),
    #[error("email template `{id}` not found: add {dir}/{id}.subject.txt and {dir}/{id}.txt")]
    NotFound { id: String, dir: String },
    #[error("cannot read email template file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("email template {file} failed to render: {detail}")]
    Render { file: String, detail: String },
}

/// The templates folder plus the built-in templates.
#[derive(Debug, Clone)]
pub struct Templates {
    dir: PathBuf,
}

impl Templates {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Renders template `id` for `to` with `variables`. Subject and text
    /// are plain; the HTML part, when the template has one, is HTML-escaped.
    /// A variable the template uses but `variables` lacks is an error.
    pub fn render(&self, id: &str, to: &str, variables: &[(String, String)]) -> Result<NewEmail, TemplateError> {
        check_id(id)?;

        let subject_name = format!("{id}.subject.txt");
        let text_name = format!("{id}.txt");
        let html_name = format!("{id}.html");
        let (Some(subject), Some(text)) = (self.load(&subject_name)?, self.load(&text_name)?) else {
            return Err(TemplateError::NotFound { id: id.to_owned(), dir: self.dir.display().to_string() });
        };
        let html = self.load(&html_name)?;

        let context: std::collections::BTreeMap<&str, &str> =
            variables.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let subject = render_one(&subject_name, &subject, &context)?;
        let body_text = render_one(&text_name, &text, &context)?;
        let body_html = html.map(|html| render_one(&html_name, &html, &context)).transpose()?;

        Ok(NewEmail {
            template_id: id.to_owned(),
            to: to.to_owned(),
            // A subject is one line; line breaks would corrupt the header.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            body_text,
            body_html,
        })
    }

    /// Checks that template `id` has its subject and text parts.
    pub fn check_exists(&self, id: &str) -> Result<(), TemplateError> {
        check_id(id)?;
        let subject = self.load(&format!("{id}.subject.txt"))?;
        let text = self.load(&format!("{id}.txt"))?;
        if subject.is_some() && text.is_some() {
            Ok(())
        } else {
            Err(TemplateError::NotFound { id: id.to_owned(), dir: self.dir.display().to_string() })
        }
    }

    /// Reads template file `name` from the folder, else the built-in one.
    fn load(&self, name: &str) -> Result<Option<String>, TemplateError> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(BUILT_IN.iter().find(|(built_in, _)| *built_in == name).map(|(_, text)| (*text).to_owned()))
            }
            Err(error) => Err(TemplateError::Read { path: path.display().to_string(), error }),
        }
    }
}

fn check_id(id: &str) -> Result<(), TemplateError> {
    let valid = !id.is_empty()
        && !id.starts_with('.')
        && !id.contains("..")
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(TemplateError::InvalidId(id.to_owned())) }
}

fn render_one(name: &str, source: &str, context: &std::collections::BTreeMap<&str, &str>) -> Result<String, TemplateError> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    environment.set_keep_trailing_newline(true);

    let render_error = |error: minijinja::Error| TemplateError::Render { file: name.to_owned(), detail: describe(&error) };
    environment.add_template(name, source).map_err(render_error)?;
    environment.get_template(name).and_then(|template| template.render(context)).map_err(render_error)
}

/// Formats the error with its cause chain, so an undefined variable is named.
fn describe(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn built_in_welcome_renders_in_portuguese() {
        let templates = Templates::new("/nonexistent-templates");
        let email = templates.render("welcome_01", "maria@example.org", &variables(&[("nome", "Maria")])).unwrap();
        assert_eq!(email.subject, "Boas-vindas ao Clube do Grito, Maria!");
        assert!(email.body_text.starts_with("Olá, Maria! Boas-vindas ao Clube do Grito"), "{}", email.body_text);
        assert!(email.body_html.unwrap().contains("Olá, Maria!"));
    }

    #[test]
    fn html_part_is_escaped_and_text_is_not() {
        let templates = Templates::new("/nonexistent-templates");
        let email = templates.render("welcome_01", "a@example.org", &variables(&[("nome", "<b>Zé</b>")])).unwrap();
        assert!(email.body_text.contains("Olá, <b>Zé</b>!"));
        let html = email.body_html.unwrap();
        assert!(html.contains("Olá, &lt;b&gt;Zé&lt;"), "{html}");
        assert!(!html.contains("<b>Zé"), "{html}");
    }

    #[test]
    fn missing_variable_names_it() {
        let templates = Templates::new("/nonexistent-templates");
        let error = templates.render("welcome_01", "a@example.org", &[]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("welcome_01.subject.txt"), "{message}");
        assert!(message.contains("undefined"), "{message}");
    }

    #[test]
    fn missing_template_and_bad_ids_fail_clearly() {
        let templates = Templates::new("/nonexistent-templates");
        let error = templates.render("farewell", "a@example.org", &[]).unwrap_err();
        assert!(error.to_string().contains("email template `farewell` not found"), "{error}");
        for id in ["../etc/passwd", "", ".hidden", "a/b"] {
            assert!(matches!(templates.render(id, "a@example.org", &[]), Err(TemplateError::InvalidId(_))), "{id}");
        }
    }

    #[test]
    fn folder_overrides_built_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("welcome_01.subject.txt"), "Oi {{ nome }}").unwrap();
        let templates = Templates::new(dir.path());
        let email = templates.render("welcome_01", "a@example.org", &variables(&[("nome", "Ana")])).unwrap();
        assert_eq!(email.subject, "Oi Ana");
        assert!(email.body_text.starts_with("Olá, Ana!"));
    }
}

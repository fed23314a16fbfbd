use super::*;

const PAYLOAD: &str = r#"{"email":"maria@example.org","name":"Maria","address":{"city":"Recife","zip":null},"tags":["a","b"],"age":31,"vip":true}"#;

fn event() -> EventFields<'static> {
    EventFields {
        id: "0192f5b0-0000-7000-8000-000000000001",
        event_name: "user.signed_up",
        user_id: "7f1d4c1e-2b0a-4c5e-9a43-1c2d3e4f5a6b",
        source: "app",
        occurred_at: "2026-12-04T10:00:00.000000Z",
        payload: PAYLOAD,
    }
}

fn run(action: &str) -> Result<Email, ActionError> {
    render(&parse_action(action)?, &event())
}

#[test]
fn placeholders_resolve_from_event() {
    let email = run(r#"{"type":"email","template_id":"welcome_01","to":"{{payload.email}}",
        "variables":{"nome":"{{ payload.name }}","cidade":"{{payload.address.city}}","evento":"{{event_name}}",
        "quando":"{{occurred_at}}","quem":"{{user_id}}","origem":"{{source}}","idade":"{{payload.age}}",
        "vip":"{{payload.vip}}","tag":"{{payload.tags.1}}","fixo":"Olá {{payload.name}}!"}}"#)
    .unwrap();
    assert_eq!(email.template_id, "welcome_01");
    assert_eq!(email.to, "maria@example.org");
    let variable = |name: &str| email.variables.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).unwrap();
    assert_eq!(variable("nome"), "Maria");
    assert_eq!(variable("cidade"), "Recife");
    assert_eq!(variable("evento"), "user.signed_up");
    assert_eq!(variable("quando"), "2026-12-04T10:00:00.000000Z");
    assert_eq!(variable("quem"), "7f1d4c1e-2b0a-4c5e-9a43-1c2d3e4f5a6b");
    assert_eq!(variable("origem"), "app");
    assert_eq!(variable("idade"), "31");
    assert_eq!(variable("vip"), "true");
    assert_eq!(variable("tag"), "b");
    assert_eq!(variable("fixo"), "Olá Maria!");
}

#[test]
fn literal_recipient_and_no_variables_work() {
    let email = run(r#"{"type":"email","template_id":"welcome_01","to":"equipe@example.org"}"#).unwrap();
    assert_eq!(email.to, "equipe@example.org");
    assert!(email.variables.is_empty());
}

#[test]
fn missing_path_names_field_and_path() {
    let error = run(r#"{"type":"email","template_id":"t","to":"{{payload.email}}","variables":{"bairro":"{{payload.address.bairro}}"}}"#)
        .unwrap_err();
    assert_eq!(error.code, "missing_value");
    assert!(error.message.contains("`variables.bairro`"), "{}", error.message);
    assert!(error.message.contains("payload.address.bairro"), "{}", error.message);
}

#[test]
fn non_scalar_value_is_rejected() {
    let error = run(r#"{"type":"email","template_id":"t","to":"{{payload.email}}","variables":{"endereco":"{{payload.address}}"}}"#)
        .unwrap_err();
    assert_eq!(error.code, "not_text");
    assert!(error.message.contains("an object"), "{}", error.message);

    let error = run(r#"{"type":"email","template_id":"t","to":"{{payload.email}}","variables":{"cep":"{{payload.address.zip}}"}}"#)
        .unwrap_err();
    assert!(error.message.contains("null"), "{}", error.message);
}

#[test]
fn invalid_resolved_address_is_rejected() {
    let error = run(r#"{"type":"email","template_id":"t","to":"{{payload.name}}"}"#).unwrap_err();
    assert_eq!(error.code, "invalid_email");
    assert!(error.message.contains("`to` resolved to `Maria`"), "{}", error.message);
}

#[test]
fn invalid_literal_address_fails_validation() {
    for to in ["maria", "maria@", "maria@localhost", "Maria <maria@example.org>", "a@b@example.org"] {
        let action = format!(r#"{{"type":"email","template_id":"t","to":"{to}"}}"#);
        let error = parse_action(&action).unwrap_err();
        assert_eq!(error.code, "invalid_action", "{to}");
        assert!(error.message.contains("`to` is not a valid email address"), "{to}: {}", error.message);
    }
}

#[test]
fn malformed_actions_name_the_field() {
    let cases = [
        (r#"{"type":"email","to":"a@example.org"}"#, "`template_id` is missing"),
        (r#"{"type":"email","template_id":"","to":"a@example.org"}"#, "`template_id` is empty"),
        (r#"{"type":"email","template_id":"../etc/passwd","to":"a@example.org"}"#, "`template_id` `../etc/passwd` is invalid"),
        (r#"{"type":"email","template_id":"t"}"#, "`to` is missing"),
        (r#"{"type":"email","template_id":"t","to":5}"#, "`to` must be a string"),
        (r#"{"type":"email","template_id":"t","to":"{{payload.email"}"#, "`to`: a `{{` has no matching `}}`"),
        (r#"{"type":"email","template_id":"t","to":"{{cpf}}"}"#, "unknown placeholder `{{cpf}}`"),
        (r#"{"type":"email","template_id":"t","to":"{{ }}"}"#, "is empty"),
        (r#"{"type":"email","template_id":"t","to":"a@example.org","variables":[]}"#, "`variables` must be an object"),
        (r#"{"type":"email","template_id":"t","to":"a@example.org","variables":{"x":{"y":1}}}"#, "`variables.x` must be text"),
        (r#"{"type":"webhook","template_id":"t","to":"a@example.org"}"#, "`type` must be \"email\""),
        ("not json", "not valid JSON"),
    ];
    for (action, expected) in cases {
        let error = parse_action(action).unwrap_err();
        assert!(error.message.contains(expected), "{action}: {}", error.message);
    }
}

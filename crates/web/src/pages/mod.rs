//! Server-rendered pages: plain HTML with stable `data-field` hooks (listed in the crate's
//! documentation), a shared layout, and small helpers that escape every text they insert.

pub mod evolution;
pub mod experiment;
pub mod experiments;
pub mod overview;

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::Html;

use crate::error::Page;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for a `<script type="application/json">` block: `<` is escaped so no text can close
/// the element.
pub fn script_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

/// A number with its hook: the rounded text, the full value in `data-value`; "not measured"
/// without one.
pub fn number(field: &str, value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) => format!(
            "<span data-field=\"{}\" data-value=\"{}\">{v:.decimals$}</span>",
            esc(field),
            serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())
        ),
        None => format!(
            "<span data-field=\"{}\" class=\"nm\">not measured</span>",
            esc(field)
        ),
    }
}

/// An integer with its hook.
pub fn count(field: &str, value: i64) -> String {
    format!(
        "<span data-field=\"{}\" data-value=\"{value}\">{value}</span>",
        esc(field)
    )
}

/// Text with its hook.
pub fn text(field: &str, value: &str) -> String {
    format!("<span data-field=\"{}\">{}</span>", esc(field), esc(value))
}

/// A Unix-millisecond time as UTC text.
pub fn time(ms: i64) -> String {
    codeclab_lab::budget::utc_timestamp(ms)
}

const NAV: [(&str, &str); 3] = [
    ("/", "Overview"),
    ("/evolution", "Evolution"),
    ("/experiments", "Experiments"),
];

/// The page around `body`.
pub fn layout(title: &str, active: &str, body: &str) -> String {
    let mut nav = String::new();
    for (href, label) in NAV {
        let class = if href == active {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{class}>{label}</a>");
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · codeclab</title>
<link rel="stylesheet" href="/assets/vendor/uplot/uPlot.min.css">
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/vendor/uplot/uPlot.iife.min.js" defer></script>
<script src="/assets/app.js" defer></script>
</head>
<body>
<header>
<span class="brand">codeclab</span>
<nav>{nav}</nav>
<span class="status">lab <span data-field="header-status" id="lab-status">…</span></span>
<span class="token">
<input id="token-input" type="password" placeholder="admin token" autocomplete="off">
<button id="token-save" type="button">Use token</button>
<button id="token-clear" type="button">Forget</button>
<span id="token-state"></span>
</span>
</header>
<div id="admin-message" data-field="admin-message" role="status"></div>
<main>
<h1>{title}</h1>
{body}
</main>
<footer>Charts: <a href="/assets/vendor/uplot/LICENSE">uPlot</a> (MIT). Live updates over server-sent events.</footer>
</body>
</html>
"#,
        title = esc(title),
    )
}

/// The error page of a status.
pub fn error_page(status: StatusCode, message: &str) -> String {
    let body = format!(
        "<p class=\"error\"><span data-field=\"error-status\">{}</span> <span data-field=\"error-message\">{}</span></p>\n<p><a href=\"/experiments\">All experiments</a></p>",
        status.as_u16(),
        esc(message)
    );
    layout(status.canonical_reason().unwrap_or("Error"), "", &body)
}

pub async fn not_found(uri: axum::http::Uri) -> Page {
    Page(crate::WebError::NotFound(format!(
        "there is no page {}",
        uri.path()
    )))
}

pub type PageResult = Result<Html<String>, Page>;

//! What people upload with besides the page: a ShareX custom uploader and a
//! POSIX shell script, both made by this instance for the caller (its
//! public URL, and the caller's key on a keys instance), and the
//! Integrations page that explains them.

use std::sync::Arc;

use maud::{Markup, html};
use rocket::http::{ContentType, Header};
use rocket::response::{self, Responder};
use rocket::serde::json::{Value, json};
use rocket::{Request, Route, State, get, routes};

use crate::assets::Assets;
use crate::config::{Access, Config};
use crate::http::links::BaseUrl;
use crate::routes::access::Caller;
use crate::service::moderation::Moderation;
use crate::views::{Page, layout};

/// Mounted at `/api`.
pub fn api_routes() -> Vec<Route> {
    routes![sharex, shell]
}

/// Mounted at `/`.
pub fn page_routes() -> Vec<Route> {
    routes![page]
}

/// A generated file, served as a download that no cache keeps (it may
/// carry the caller's key).
pub struct Download {
    file_name: String,
    content_type: ContentType,
    body: String,
}

impl<'r> Responder<'r, 'static> for Download {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        response::Response::build_from(self.body.respond_to(req)?)
            .header(self.content_type)
            .header(Header::new(
                "Content-Disposition",
                format!("attachment; filename=\"{}\"", self.file_name),
            ))
            .header(Header::new("Cache-Control", "private, no-store"))
            .ok()
    }
}

/// The caller's key, when it shows a valid one.
async fn callers_key(caller: &Caller, moderation: &Moderation) -> Option<String> {
    let key = caller.key.as_deref()?;
    match moderation.key(caller.addr, Some(key)).await {
        Ok(Some(_)) => Some(key.to_string()),
        _ => None,
    }
}

/// `kitteh.example` from a base URL, for file names.
fn host_of(base: &BaseUrl) -> String {
    let host = url::Url::parse(&base.0)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "kitteh".into());
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The ShareX custom uploader for this instance. Its response paths name
/// fields of the API's answer; a test uploads through it and follows them.
pub fn sharex_config(base: &BaseUrl, key: Option<&str>, thumbnail_index: Option<usize>) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(key) = key {
        headers.insert("Authorization".into(), json!(format!("Bearer {key}")));
    }
    let thumbnail = match thumbnail_index {
        Some(i) => format!("{{json:sizes[{i}].url}}"),
        None => "{json:image_url}".into(),
    };
    json!({
        "Version": "15.0.0",
        "Name": format!("Kitteh ({})", host_of(base)),
        "DestinationType": "ImageUploader",
        "RequestMethod": "POST",
        "RequestURL": format!("{}/api/images", base.0),
        "Headers": headers,
        "Body": "MultipartFormData",
        "FileFormName": "file",
        "URL": "{json:page_url}",
        "ThumbnailURL": thumbnail,
        "DeletionURL": "{json:delete_url}",
        "ErrorMessage": "{json:error.message}",
    })
}

/// The size a thumbnail comes from: the narrowest configured.
fn thumbnail_index(config: &Config) -> Option<usize> {
    config
        .variants
        .sizes
        .iter()
        .enumerate()
        .min_by_key(|(_, s)| s.width)
        .map(|(i, _)| i)
}

#[get("/sharex.sxcu")]
async fn sharex(
    caller: Caller,
    base: BaseUrl,
    config: &State<Config>,
    moderation: &State<Arc<Moderation>>,
) -> Download {
    let key = callers_key(&caller, moderation).await;
    let body = sharex_config(&base, key.as_deref(), thumbnail_index(config));
    Download {
        file_name: format!("{}.sxcu", host_of(&base)),
        content_type: ContentType::JSON,
        body: serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string()),
    }
}

/// Quotes `text` for a POSIX shell: inside single quotes nothing is special
/// but the single quote itself.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The upload script for this instance.
pub fn upload_script(base: &BaseUrl, key: Option<&str>) -> String {
    // The key first: a URL can hold any text, a key only `kt_` and hex.
    SCRIPT
        .replace("@KEY@", &sh_quote(key.unwrap_or_default()))
        .replace("@URL@", &sh_quote(&base.0))
}

/// `upload.sh`: POSIX sh and curl only. The API's JSON answer is compact
/// with its keys in order, so the first `"page_url"` is the picture's own.
const SCRIPT: &str = r#"#!/bin/sh
# Uploads pictures to Kitteh and prints each page URL; copies the last one
# to the clipboard when wl-copy, xclip or pbcopy is there.
#   upload.sh cat.jpg dog.png
#   flameshot gui -r | upload.sh
# Made for you by this server; it holds your upload key, if you have one:
# keep it private. KITTEH_URL and KITTEH_KEY in the environment win.
set -u
url=${KITTEH_URL:-@URL@}
key=${KITTEH_KEY:-@KEY@}
command -v curl >/dev/null 2>&1 || { echo "upload.sh: curl is needed" >&2; exit 1; }
last=""
status=0

# Uploads one curl -F value (file=@path or file=@-), prints the page URL.
send() {
  if [ -n "$key" ]; then
    out=$(curl -sS -w '\n%{http_code}' -H "Authorization: Bearer $key" -F "$1" "$url/api/images") || return 1
  else
    out=$(curl -sS -w '\n%{http_code}' -F "$1" "$url/api/images") || return 1
  fi
  code=$(printf '%s\n' "$out" | tail -n 1)
  body=$(printf '%s\n' "$out" | sed '$d')
  case "$code" in
    2??)
      page=$(printf '%s' "$body" | tr ',' '\n' | sed -n 's/^{*"page_url":"\([^"]*\)".*/\1/p' | head -n 1)
      printf '%s\n' "$page"
      last=$page
      ;;
    *)
      message=$(printf '%s' "$body" | tr ',' '\n' | sed -n 's/^.*"message":"\([^"]*\)".*/\1/p' | head -n 1)
      echo "upload.sh: ${2:-stdin}: $code ${message:-$body}" >&2
      return 1
      ;;
  esac
}

if [ "$#" -eq 0 ]; then
  send "file=@-;filename=stdin" || status=1
else
  for file in "$@"; do
    if [ ! -f "$file" ] || [ ! -r "$file" ]; then
      echo "upload.sh: $file: not a readable file" >&2
      status=1
      continue
    fi
    # curl reads ; and , in -F values: quote the name for it.
    quoted=$(printf '%s' "$file" | sed 's/\\/\\\\/g; s/"/\\"/g')
    send "file=@\"$quoted\"" "$file" || status=1
  done
fi

if [ -n "$last" ]; then
  if [ -n "${WAYLAND_DISPLAY:-}" ] && command -v wl-copy >/dev/null 2>&1; then
    printf '%s' "$last" | wl-copy
  elif [ -n "${DISPLAY:-}" ] && command -v xclip >/dev/null 2>&1; then
    printf '%s' "$last" | xclip -selection clipboard
  elif command -v pbcopy >/dev/null 2>&1; then
    printf '%s' "$last" | pbcopy
  fi
fi
exit "$status"
"#;

#[get("/upload.sh")]
async fn shell(caller: Caller, base: BaseUrl, moderation: &State<Arc<Moderation>>) -> Download {
    let key = callers_key(&caller, moderation).await;
    Download {
        file_name: "upload.sh".into(),
        content_type: ContentType::new("text", "x-shellscript"),
        body: upload_script(&base, key.as_deref()),
    }
}

fn steps(items: Markup) -> Markup {
    html! { ol class="steps" { (items) } }
}

#[get("/integrations")]
async fn page(
    caller: Caller,
    base: BaseUrl,
    config: &State<Config>,
    moderation: &State<Arc<Moderation>>,
    assets: &State<Assets>,
) -> Page {
    let key = callers_key(&caller, moderation).await;
    let keys = config.uploads.access == Access::Keys;
    let curl = match (&key, keys) {
        (Some(_), _) | (None, true) => format!(
            "curl -H \"Authorization: Bearer $KITTEH_KEY\" -F file=@cat.jpg {}/api/images",
            base.0
        ),
        (None, false) => format!("curl -F file=@cat.jpg {}/api/images", base.0),
    };
    layout(
        assets,
        "Integrations",
        html! {
            h1 { "Integrations" }
            @if keys && key.is_none() {
                p class="notice" { "This server takes uploads with a key. "
                    a href="/" { "Sign in with yours" } " first, and the files below will carry it." }
            } @else if key.is_some() {
                p class="notice" { "The files below carry your upload key: keep them private." }
            }
            section id="sharex" {
                h2 { "ShareX (Windows)" }
                (steps(html! {
                    li { a href="/api/sharex.sxcu" download { "Download the ShareX uploader" } "." }
                    li { "Open it: ShareX asks whether to make it your image uploader. Say yes." }
                    li { "Take a screenshot. ShareX uploads it and copies the page link; its history keeps the delete link." }
                }))
            }
            section id="shell" {
                h2 { "Linux and macOS: upload.sh" }
                (steps(html! {
                    li { a href="/api/upload.sh" download { "Download upload.sh" } ", or in a terminal:" }
                    li { code { "curl -o ~/.local/bin/upload.sh " (base.0) "/api/upload.sh && chmod +x ~/.local/bin/upload.sh" } }
                    li { "Upload files: " code { "upload.sh cat.jpg dog.png" } ". Each page link is printed; the last is copied to the clipboard (wl-copy, xclip or pbcopy)." }
                    li { "Or from a screenshot tool: " code { "flameshot gui -r | upload.sh" } }
                }))
            }
            section id="curl" {
                h2 { "Anything else: the API" }
                p { "One request with the file in the form field " code { "file" } "; the answer is JSON with " code { "page_url" } ", " code { "image_url" } " and " code { "delete_url" } ":" }
                pre { code id="curl-line" { (curl) } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn host_names_make_safe_file_names() {
        assert_eq!(
            host_of(&BaseUrl("https://kitteh.example".into())),
            "kitteh.example"
        );
        assert_eq!(host_of(&BaseUrl("http://[::1]:4000".into())), "---1-");
    }
}

//! HTML pages, compiled into the binary with maud: no template is read at
//! run time, and every interpolation is escaped.

use maud::{DOCTYPE, Markup, html};

use crate::assets::Assets;
use crate::service::model::ImageInfo;

/// A whole HTML page, ready to send (the routes make it an answer, the
/// edge writes it for the errors it answers itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page(pub String);

pub fn layout(assets: &Assets, title: &str, body: Markup) -> Page {
    layout_with_head(assets, title, html! {}, body)
}

/// As `layout`, with more in the head (a show page's link-preview tags).
pub fn layout_with_head(assets: &Assets, title: &str, head: Markup, body: Markup) -> Page {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kitteh" }
                link rel="stylesheet" href=(assets.path("app.css"));
                link rel="icon" href="/favicon.ico";
                script src=(assets.path("app.js")) defer {}
                (head)
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="site" {
                    img src=(assets.path("logo.svg")) alt="" width="32" height="32";
                    a href="/" { "Kitteh" }
                }
                main id="main" { (body) }
                footer class="site" {
                    "Kitteh: pictures with memorable names. "
                    a href="/" { "Upload a picture" }
                    " · "
                    a href="/mine" { "My uploads" }
                    " · "
                    a href="/integrations" { "Integrations" }
                }
            }
        }
    };
    Page(markup.into_string())
}

/// A picture's name with a line-break opportunity between its words, so a
/// long name wraps as `SwimminglySpiffingNectar­CelticShorthair­Kitty`
/// would be hyphenated by a person, never in the middle of a word.
pub fn name_words(name: &str) -> Markup {
    let mut words: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut previous_lower = false;
    for (i, c) in name.char_indices() {
        // A word starts where a capital follows a small letter, so an
        // acronym (JPEG) stays whole.
        if c.is_uppercase() && previous_lower {
            words.push(&name[start..i]);
            start = i;
        }
        previous_lower = c.is_lowercase();
    }
    words.push(&name[start..]);
    html! {
        @for (i, word) in words.iter().enumerate() {
            @if i > 0 { wbr; }
            (word)
        }
    }
}

/// `25 MiB`: a byte limit in words.
fn limit_words(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        human_bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
    }
}

/// What the upload page offers, from the configuration and the request.
pub struct UploadPage {
    pub max_bytes: u64,
    /// A keys instance without a key from this browser: ask for one.
    pub sign_in: bool,
    /// This browser holds a key (offer to forget it).
    pub signed_in: bool,
    /// `expires_in` choices: value and words.
    pub expiry_choices: Vec<(String, String)>,
    /// The value selected at first.
    pub expiry_default: String,
    /// Days addresses are kept (0: not kept).
    pub ip_retention_days: u32,
}

impl UploadPage {
    /// The expiry choices of the form within `max` (None: no maximum),
    /// with `default` selected, added when it is not one of them.
    pub fn new(
        max_bytes: u64,
        max: Option<std::time::Duration>,
        default: Option<std::time::Duration>,
        default_text: &str,
        ip_retention_days: u32,
    ) -> Self {
        const CHOICES: &[(&str, &str, u64)] = &[
            ("1h", "1 hour", 3600),
            ("1d", "1 day", 86_400),
            ("7d", "1 week", 7 * 86_400),
            ("30d", "30 days", 30 * 86_400),
        ];
        let mut expiry_choices: Vec<(String, String)> = Vec::new();
        if max.is_none() {
            expiry_choices.push(("never".into(), "Never".into()));
        }
        for (value, words, seconds) in CHOICES {
            if max.is_none_or(|m| m.as_secs() >= *seconds) {
                expiry_choices.push(((*value).into(), (*words).into()));
            }
        }
        let expiry_default = match default {
            None => "never".to_string(),
            Some(d) => CHOICES
                .iter()
                .find(|(_, _, s)| *s == d.as_secs())
                .map_or_else(|| default_text.to_string(), |(v, _, _)| (*v).to_string()),
        };
        if !expiry_choices.iter().any(|(v, _)| *v == expiry_default) {
            let words = format!("{expiry_default} (default)");
            expiry_choices.insert(0, (expiry_default.clone(), words));
        }
        Self {
            max_bytes,
            sign_in: false,
            signed_in: false,
            expiry_choices,
            expiry_default,
            ip_retention_days,
        }
    }
}

fn upload_form(page: &UploadPage) -> Markup {
    html! {
        form id="upload-form" class="card drop" method="post" action="/upload" enctype="multipart/form-data" {
            label for="file" { "Choose a picture, drop it anywhere, or paste it" }
            p id="promise" {
                "JPEG, PNG, GIF or WebP, up to " (limit_words(page.max_bytes)) ". "
                "Location, camera and other personal details are removed from the file; the picture itself is kept as it is."
            }
            input id="file" type="file" name="image[file]" accept="image/jpeg,image/png,image/gif,image/webp" multiple required aria-describedby="promise";
            div class="expiry" {
                label for="expires_in" { "Delete it after" }
                select id="expires_in" name="expires_in" {
                    @for (value, words) in &page.expiry_choices {
                        option value=(value) selected[*value == page.expiry_default] { (words) }
                    }
                }
            }
            div class="actions" {
                button type="submit" { "Upload" }
            }
            progress id="progress" max="1" value="0" hidden aria-label="Upload progress" {}
            p id="status" class="status" aria-live="polite" {}
        }
    }
}

/// The form that asks for an upload key once and keeps it in a cookie.
pub fn key_form(next: &str, heading: &str) -> Markup {
    html! {
        form id="key-form" class="card" method="post" action="/key" {
            h2 { (heading) }
            p { "Paste the upload key the operator gave you (it starts with " code { "kt_" } "). This browser keeps it until you forget it." }
            input type="hidden" name="next" value=(next);
            label for="key" { "Upload key" }
            input id="key" type="password" name="key" autocomplete="off" required;
            div class="actions" { button type="submit" { "Use this key" } }
        }
    }
}

/// The button that removes the key cookie.
pub fn forget_key_form() -> Markup {
    html! {
        form id="forget-key" class="inline" method="post" action="/key/forget" {
            button type="submit" class="secondary" { "Forget this key" }
        }
    }
}

fn small_print(page: &UploadPage) -> Markup {
    html! {
        p class="small-print" {
            @if page.ip_retention_days > 0 {
                "To fight abuse, the address each upload comes from is kept for "
                (page.ip_retention_days) " days, then erased. "
            } @else {
                "The address uploads come from is not kept. "
            }
            "Every picture can be reported from its page."
        }
    }
}

/// The upload page, optionally with the previous attempt's error in words.
pub fn upload_page(assets: &Assets, page: &UploadPage, error: Option<&str>) -> Page {
    layout(
        assets,
        "Upload a picture",
        html! {
            h1 { "Upload a picture" }
            @if let Some(error) = error {
                (error_box(error))
            }
            @if page.sign_in {
                (key_form("/", "This server takes uploads with a key"))
            } @else {
                (upload_form(page))
                @if page.signed_in { (forget_key_form()) }
            }
            section id="result" class="result card" hidden aria-live="polite" {}
            (small_print(page))
        },
    )
}

/// Longer than any ordinary word of a message: a picture's name.
const NAME_LIKE: usize = 16;

/// An error as people should see it: marked, coloured and announced. A
/// picture's name in the message may wrap between its words, as titles
/// do; ordinary words (`WebP`) are left whole.
fn error_box(message: &str) -> Markup {
    html! {
        div class="error-box" role="alert" {
            span class="error-icon" aria-hidden="true" { "!" }
            p {
                @for (i, word) in message.split(' ').enumerate() {
                    @if i > 0 { " " }
                    @if word.len() > NAME_LIKE { (name_words(word)) } @else { (word) }
                }
            }
        }
    }
}

/// Human-readable byte size (1.2 MB).
pub fn human_bytes(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b < 1024.0 {
        format!("{bytes} bytes")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

pub struct ShowLinks<'a> {
    pub page_url: &'a str,
    pub image_url: &'a str,
    /// The image URL ending in its extension, for sharing.
    pub image_file_url: &'a str,
    pub download_url: &'a str,
    /// Shown once, right after the upload that created the image.
    pub delete_url: Option<&'a str>,
    pub sizes: &'a [SizeLink],
    /// The size this page is about (`/Tiny{Name}Kitty`), if not the original.
    pub focus: Option<&'a SizeLink>,
    /// Where to report the picture.
    pub report_url: &'a str,
    /// What link previews show.
    pub preview: &'a Preview,
}

/// A BlurHash as a `data:` URL of a small PNG.
pub fn placeholder(hash: &str, width: u32, height: u32) -> Option<String> {
    use base64::Engine as _;
    let png = crate::imaging::resize::blurhash_png(hash, width, height)?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// What an unfurler (Discord, Slack, a forum) shows for a page: the
/// largest ready size, else the original, with absolute URLs.
pub struct Preview {
    pub title: String,
    pub page_url: String,
    pub image_url: String,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    pub alt: String,
    pub oembed_url: String,
}

fn preview_tags(p: &Preview) -> Markup {
    html! {
        meta property="og:title" content=(p.title);
        meta property="og:type" content="website";
        meta property="og:url" content=(p.page_url);
        meta property="og:site_name" content="Kitteh";
        meta property="og:image" content=(p.image_url);
        meta property="og:image:width" content=(p.width);
        meta property="og:image:height" content=(p.height);
        meta property="og:image:type" content=(p.content_type);
        meta property="og:image:alt" content=(p.alt);
        meta name="twitter:card" content="summary_large_image";
        meta name="twitter:title" content=(p.title);
        meta name="twitter:image" content=(p.image_url);
        meta name="twitter:image:alt" content=(p.alt);
        link rel="alternate" type="application/json+oembed" href=(p.oembed_url) title=(p.title);
    }
}

/// One size as the show page lists it.
pub struct SizeLink {
    pub name: String,
    pub label: String,
    pub image_url: String,
    /// The image URL ending in its extension, for sharing.
    pub file_url: String,
    pub page_url: String,
    pub width: u32,
    pub height: u32,
    pub state: String,
    /// Byte size, once made.
    pub bytes: Option<i64>,
}

fn copy_row(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div class="copy-row" {
            label for=(id) { (label) }
            input id=(id) value=(value) readonly;
            button type="button" class="secondary" data-copy=(id) { "Copy" }
        }
    }
}

pub fn show_page(assets: &Assets, image: &ImageInfo, links: &ShowLinks<'_>) -> Page {
    let name = image.name.clone();
    let title = match links.focus {
        Some(size) => format!("{}{name}", size.label),
        None => name.clone(),
    };
    let srcset: Vec<String> = links
        .sizes
        .iter()
        .filter(|s| s.state == "ready")
        .map(|s| format!("{} {}w", s.image_url, s.width))
        .chain(std::iter::once(format!(
            "{} {}w",
            links.image_url, image.width
        )))
        .collect();
    let (main_src, main_w, main_h) = match links.focus {
        Some(size) => (size.image_url.as_str(), size.width, size.height),
        None => (links.image_url, image.width, image.height),
    };
    // What is shared ends in the file's extension: many forums and chat
    // tools embed only such links.
    let share_src = match links.focus {
        Some(size) => size.file_url.as_str(),
        None => links.image_file_url,
    };
    let (shown_bytes, shown_label) = match links.focus {
        Some(size) => (size.bytes, size.label.as_str()),
        None => (Some(image.bytes), ""),
    };
    let page_url = match links.focus {
        Some(size) => size.page_url.as_str(),
        None => links.page_url,
    };
    let alt = format!("Uploaded picture {title}");
    let markdown = format!("[![{title}]({share_src})]({page_url})");
    let html_snippet = format!(
        "<a href=\"{page_url}\"><img src=\"{share_src}\" alt=\"{title}\" width=\"{main_w}\" height=\"{main_h}\"></a>"
    );
    let bbcode = format!("[url={page_url}][img]{share_src}[/img][/url]");
    layout_with_head(
        assets,
        &title,
        preview_tags(links.preview),
        html! {
            h1 {
                @if !shown_label.is_empty() { (shown_label) wbr; }
                (name_words(&image.name))
            }
            figure {
                div class="frame" {
                    @if let Some(src) = image.blurhash.as_deref().and_then(|h| placeholder(h, main_w, main_h)) {
                        img class="placeholder" src=(src) alt="" aria-hidden="true" width=(main_w) height=(main_h);
                    }
                    @if links.focus.is_some() {
                        img class="picture" src=(main_src) alt=(alt) width=(main_w) height=(main_h);
                    } @else {
                        img class="picture" src=(main_src) srcset=(srcset.join(", "))
                            sizes={ "(max-width: " (main_w) "px) 100vw, " (main_w) "px" }
                            alt=(alt) width=(main_w) height=(main_h);
                    }
                }
                (caption(image, (main_w, main_h), shown_bytes))
            }
            p class="actions" {
                a class="button" href=(main_src) { "Image file" }
                a class="button" href=(links.download_url) { "Download" }
                a class="button secondary" href="/" { "Upload another" }
                a class="report" href=(links.report_url) { "Report" }
            }
            (share_section(page_url, share_src, &markdown, &html_snippet, &bbcode))
            (sizes_list(image, links))
            @if let Some(delete_url) = links.delete_url {
                section class="delete-link" {
                    h2 { "Delete link" }
                    p { "Keep this link: it is shown only once, and anyone who has it can delete this picture." }
                    p { a href=(delete_url) { (delete_url) } }
                }
            }
        },
    )
}

/// What the picture is: its uploader's file name, size, type and dates.
fn caption(image: &ImageInfo, (main_w, main_h): (u32, u32), shown_bytes: Option<i64>) -> Markup {
    let original_name = image.uploader_file_name();
    html! {
    figcaption {
        @if let Some(original) = original_name {
            span class="original-name" { (original) } " · "
        }
        span id="dimensions" { (main_w) "×" (main_h) " pixels" } " · "
        @if let Some(bytes) = shown_bytes {
            span id="bytes" { (human_bytes(bytes)) } " · "
        }
        (image.content_type) " · uploaded "
        time datetime=(image.created_at.to_rfc3339()) {
            (image.created_at.format("%Y-%m-%d %H:%M UTC"))
        }
        @if let Some(at) = image.expires_at {
            " · " span id="expires" { "expires "
                time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
            }
        }
    }
    }
}

/// The copy rows: page, image, and the snippets forums and sites take.
fn share_section(
    page_url: &str,
    share_src: &str,
    markdown: &str,
    html_snippet: &str,
    bbcode: &str,
) -> Markup {
    html! {
    h2 { "Share" }
    div class="copies" {
        (copy_row("copy-page", "Page link", page_url))
        (copy_row("copy-image", "Image link", share_src))
        (copy_row("copy-markdown", "Markdown", markdown))
        (copy_row("copy-html", "HTML", html_snippet))
        (copy_row("copy-bbcode", "BBCode", bbcode))
    }
    }
}

/// The original and each size, with its state while it is being made.
fn sizes_list(image: &ImageInfo, links: &ShowLinks<'_>) -> Markup {
    html! {
    h2 { "Sizes" }
    ul class="plain sizes" {
        li {
            (thumbnail(links.sizes))
            a href=(links.page_url) { "Original" } " " (image.width) "×" (image.height)
            " · " (human_bytes(image.bytes))
        }
        @for size in links.sizes {
            li {
                (thumbnail(std::slice::from_ref(size)))
                a href=(size.page_url) { (size.label) }
                " " (size.width) "×" (size.height)
                @if let Some(bytes) = size.bytes { " · " (human_bytes(bytes)) }
                @if size.state != "ready" { span class="state" { " (" (size.state) ")" } }
                " · " a href=(size.image_url) { "file" }
            }
        }
    }
    }
}

/// A small square preview for a list row: the smallest of `sizes` that is
/// ready, or an empty square (never the original, which may weigh
/// megabytes).
fn thumbnail(sizes: &[SizeLink]) -> Markup {
    let src = sizes
        .iter()
        .filter(|s| s.state == "ready")
        .min_by_key(|s| s.width)
        .map(|s| s.image_url.as_str());
    html! {
        @if let Some(src) = src {
            img class="thumb" src=(src) alt="" width="48" height="48" loading="lazy";
        } @else {
            span class="thumb" {}
        }
    }
}

pub fn delete_confirm_page(
    assets: &Assets,
    image: &ImageInfo,
    preview_url: &str,
    token: &str,
    action: &str,
) -> Page {
    let title = image.name.clone();
    layout(
        assets,
        &format!("Delete {title}"),
        html! {
            h1 { "Delete " (name_words(&title)) "?" }
            figure class="preview" {
                img src=(preview_url) alt={ "The picture " (title) } width="300";
                figcaption { (image.width) "×" (image.height) " pixels · " (human_bytes(image.bytes)) }
            }
            p { "This removes the picture and every size of it. It cannot be undone." }
            form class="delete-actions" method="post" action=(action) {
                input type="hidden" name="token" value=(token);
                a class="button secondary" href={ "/" (title) } { "Keep it" }
                button type="submit" class="danger" { "Delete it" }
            }
        },
    )
}

pub fn deleted_page(assets: &Assets, name: &str) -> Page {
    layout(
        assets,
        "Deleted",
        html! {
            h1 { "Deleted" }
            p { (name_words(name)) " is gone." }
            p { a href="/" { "Upload another picture" } }
        },
    )
}

/// One file of a form upload that sent several.
pub struct UploadedRow {
    pub file_name: Option<String>,
    pub name: Option<String>,
    pub page_url: Option<String>,
    pub delete_url: Option<String>,
    pub error: Option<String>,
}

/// What a form upload of several files answers: each one's page and
/// delete link (shown this once), or why it was refused.
pub fn uploaded_many_page(assets: &Assets, rows: &[UploadedRow]) -> Page {
    let stored = rows.iter().filter(|r| r.error.is_none()).count();
    layout(
        assets,
        "Uploaded",
        html! {
            h1 { "Uploaded " (stored) " of " (rows.len()) }
            p { "Keep the delete links: they are shown only this once." }
            ul class="plain uploaded" id="uploaded" {
                @for row in rows {
                    li {
                        @if let (Some(name), Some(page)) = (&row.name, &row.page_url) {
                            a href=(page) { (name_words(name)) }
                            @if let Some(delete) = &row.delete_url {
                                " · " a class="delete" href=(delete) { "delete link" }
                            }
                        } @else {
                            span class="file" { (row.file_name.as_deref().unwrap_or("a file")) } ": "
                            span class="error" { (row.error.as_deref().unwrap_or("refused")) }
                        }
                    }
                }
            }
            p { a href="/" { "Upload more" } }
        },
    )
}

pub(crate) fn error_box_markup(message: &str) -> Markup {
    error_box(message)
}

pub fn error_page(assets: &Assets, status: http::StatusCode, message: &str) -> Page {
    let heading = match status.as_u16() {
        404 => "Not found".to_string(),
        _ => status.canonical_reason().unwrap_or("Error").to_string(),
    };
    layout(
        assets,
        &heading,
        html! {
            h1 { (heading) }
            (error_box(message))
            p { a href="/" { "Go to the upload page" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::name_words;

    #[test]
    fn names_may_break_only_between_their_words() {
        assert_eq!(
            name_words("SwimminglySpiffingLaPermKitty").into_string(),
            "Swimmingly<wbr>Spiffing<wbr>La<wbr>Perm<wbr>Kitty"
        );
        assert_eq!(name_words("JPEG").into_string(), "JPEG");
        assert_eq!(name_words("a&lt;b").into_string(), "a&amp;lt;b");
        assert_eq!(name_words("").into_string(), "");
    }
}

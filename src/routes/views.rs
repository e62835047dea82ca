//! HTML pages, compiled into the binary with maud: no template is read at
//! run time, and every interpolation is escaped.

use maud::{DOCTYPE, Markup, html};
use rocket::http::Status;
use rocket::response::content::RawHtml;

use crate::assets::Assets;
use crate::service::model::ImageInfo;

pub type Page = RawHtml<String>;

fn layout(assets: &Assets, title: &str, body: Markup) -> Page {
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
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="site" {
                    img src=(assets.path("logo.svg")) alt="" width="32" height="32";
                    a href="/" { "Kitteh" }
                }
                main id="main" { (body) }
                footer class="site" { "Kitteh: pictures with memorable names." }
            }
        }
    };
    RawHtml(markup.into_string())
}

fn upload_form() -> Markup {
    html! {
        form id="upload-form" class="card drop" method="post" action="/upload" enctype="multipart/form-data" {
            label for="file" { "Choose a picture, drop it anywhere, or paste it" }
            p { "JPEG, PNG, GIF or WebP" }
            input id="file" type="file" name="image[file]" accept="image/jpeg,image/png,image/gif,image/webp" required;
            div class="actions" {
                button type="submit" { "Upload" }
            }
            progress id="progress" max="1" value="0" hidden aria-label="Upload progress" {}
            p id="status" class="status" aria-live="polite" {}
        }
    }
}

/// The upload page, optionally with the previous attempt's error in words.
pub fn upload_page(assets: &Assets, error: Option<&str>) -> Page {
    layout(
        assets,
        "Upload a picture",
        html! {
            h1 { "Upload a picture" }
            @if let Some(error) = error {
                p role="alert" class="error" { (error) }
            }
            (upload_form())
            section id="result" class="result card" hidden aria-live="polite" {}
        },
    )
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
    pub download_url: &'a str,
    /// Shown once, right after the upload that created the image.
    pub delete_url: Option<&'a str>,
    pub sizes: &'a [SizeLink],
    /// The size this page is about (`/Tiny{Name}Kitty`), if not the original.
    pub focus: Option<&'a SizeLink>,
}

/// One size as the show page lists it.
pub struct SizeLink {
    pub name: String,
    pub label: String,
    pub image_url: String,
    pub page_url: String,
    pub width: u32,
    pub height: u32,
    pub state: String,
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
    let alt = format!("Uploaded picture {title}");
    let markdown = format!("[![{title}]({main_src})]({})", links.page_url);
    let html_snippet = format!(
        "<a href=\"{}\"><img src=\"{main_src}\" alt=\"{title}\" width=\"{main_w}\" height=\"{main_h}\"></a>",
        links.page_url
    );
    let bbcode = format!("[url={}][img]{main_src}[/img][/url]", links.page_url);
    layout(
        assets,
        &title,
        html! {
            h1 { (title) }
            figure {
                @if links.focus.is_some() {
                    img src=(main_src) alt=(alt) width=(main_w) height=(main_h);
                } @else {
                    img src=(main_src) srcset=(srcset.join(", "))
                        sizes={ "(max-width: " (main_w) "px) 100vw, " (main_w) "px" }
                        alt=(alt) width=(main_w) height=(main_h);
                }
                figcaption {
                    (image.width) "×" (image.height) " pixels · "
                    (human_bytes(image.bytes)) " · "
                    (image.content_type) " · uploaded "
                    time datetime=(image.created_at.to_rfc3339()) {
                        (image.created_at.format("%Y-%m-%d %H:%M UTC"))
                    }
                }
            }
            p class="actions" {
                a class="button" href=(links.image_url) { "Image file" }
                a class="button" href=(links.download_url) { "Download" }
            }
            h2 { "Share" }
            div class="copies" {
                (copy_row("copy-page", "Page link", links.page_url))
                (copy_row("copy-image", "Image link", main_src))
                (copy_row("copy-markdown", "Markdown", &markdown))
                (copy_row("copy-html", "HTML", &html_snippet))
                (copy_row("copy-bbcode", "BBCode", &bbcode))
            }
            h2 { "Sizes" }
            ul class="plain sizes" {
                li { a href=(links.page_url) { "Original" } " " (image.width) "×" (image.height) }
                @for size in links.sizes {
                    li {
                        a href=(size.page_url) { (size.label) }
                        " " (size.width) "×" (size.height)
                        @if size.state != "ready" { span class="state" { " (" (size.state) ")" } }
                        " · " a href=(size.image_url) { "file" }
                    }
                }
            }
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

pub fn delete_confirm_page(assets: &Assets, image: &ImageInfo, token: &str, action: &str) -> Page {
    let title = image.name.clone();
    layout(
        assets,
        &format!("Delete {title}"),
        html! {
            h1 { "Delete " (title) "?" }
            p { "This removes the picture and every size of it. It cannot be undone." }
            form method="post" action=(action) {
                input type="hidden" name="token" value=(token);
                button type="submit" { "Delete it" }
                " "
                a href={ "/" (title) } { "Keep it" }
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
            p { (name) " is gone." }
            p { a href="/" { "Upload another picture" } }
        },
    )
}

pub fn error_page(assets: &Assets, status: Status, message: &str) -> Page {
    let heading = match status.code {
        404 => "Not found".to_string(),
        _ => status.reason().unwrap_or("Error").to_string(),
    };
    layout(
        assets,
        &heading,
        html! {
            h1 { (heading) }
            p role="alert" { (message) }
            p { a href="/" { "Go to the upload page" } }
        },
    )
}

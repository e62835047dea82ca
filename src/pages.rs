//! HTML pages, compiled into the binary with maud: no template is read at
//! run time, and every interpolation is escaped.

use maud::{DOCTYPE, Markup, html};
use rocket::http::Status;
use rocket::response::content::RawHtml;

use crate::db::entities::images;

pub type Page = RawHtml<String>;

fn layout(title: &str, body: Markup) -> Page {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kitteh" }
            }
            body {
                header {
                    a href="/" { "Kitteh" }
                }
                main { (body) }
            }
        }
    };
    RawHtml(markup.into_string())
}

fn upload_form() -> Markup {
    html! {
        form method="post" action="/upload" enctype="multipart/form-data" {
            label for="file" { "Choose a picture (JPEG, PNG, GIF or WebP)" }
            input id="file" type="file" name="image[file]" accept="image/jpeg,image/png,image/gif,image/webp" required;
            button type="submit" { "Upload" }
        }
    }
}

/// The upload page, optionally with the previous attempt's error in words.
pub fn upload_page(error: Option<&str>) -> Page {
    layout(
        "Upload a picture",
        html! {
            h1 { "Upload a picture" }
            @if let Some(error) = error {
                p role="alert" class="error" { (error) }
            }
            (upload_form())
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

pub fn show_page(image: &images::Model, links: &ShowLinks<'_>) -> Page {
    let name = format!("{}{}", image.generated_name, image.kind);
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
        None => (links.image_url, image.width as u32, image.height as u32),
    };
    layout(
        &title,
        html! {
            h1 { (title) }
            figure {
                @if links.focus.is_some() {
                    img src=(main_src) alt={ "Uploaded picture " (title) }
                        width=(main_w) height=(main_h);
                } @else {
                    img src=(main_src) srcset=(srcset.join(", "))
                        sizes={ "(max-width: " (main_w) "px) 100vw, " (main_w) "px" }
                        alt={ "Uploaded picture " (title) }
                        width=(main_w) height=(main_h);
                }
                figcaption {
                    (image.width) "×" (image.height) " pixels · "
                    (human_bytes(image.size)) " · "
                    (image.content_type) " · uploaded "
                    time datetime=(image.inserted_at.to_rfc3339()) {
                        (image.inserted_at.format("%Y-%m-%d %H:%M UTC"))
                    }
                }
            }
            ul {
                li { a href=(links.page_url) { "Page link" } }
                li { a href=(links.image_url) { "Image file" } }
                li { a href=(links.download_url) { "Download" } }
            }
            h2 { "Sizes" }
            ul class="sizes" {
                li { a href=(links.page_url) { "Original" } " " (image.width) "×" (image.height) }
                @for size in links.sizes {
                    li {
                        a href=(size.page_url) { (size.label) }
                        " " (size.width) "×" (size.height)
                        @if size.state != "ready" { " (" (size.state) ")" }
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

pub fn delete_confirm_page(image: &images::Model, token: &str, action: &str) -> Page {
    let title = format!("{}{}", image.generated_name, image.kind);
    layout(
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

pub fn deleted_page(name: &str) -> Page {
    layout(
        "Deleted",
        html! {
            h1 { "Deleted" }
            p { (name) " is gone." }
            p { a href="/" { "Upload another picture" } }
        },
    )
}

pub fn error_page(status: Status, message: &str) -> Page {
    let heading = match status.code {
        404 => "Not found".to_string(),
        _ => status.reason().unwrap_or("Error").to_string(),
    };
    layout(
        &heading,
        html! {
            h1 { (heading) }
            p role="alert" { (message) }
            p { a href="/" { "Go to the upload page" } }
        },
    )
}

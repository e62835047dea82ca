// Kitteh's upload page and show page. No framework, no inline script: the
// Content-Security-Policy allows only this file. Without JavaScript the
// plain form still works.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (form) setUpUploader(form);
  document.querySelectorAll("[data-copy]").forEach(wireCopyButton);

  function setUpUploader(form) {
    const input = form.querySelector("input[type=file]");
    const progress = document.getElementById("progress");
    const status = document.getElementById("status");
    const result = document.getElementById("result");
    let depth = 0;

    form.addEventListener("submit", (event) => {
      if (!input.files || input.files.length === 0) return;
      event.preventDefault();
      send(input.files[0]);
    });
    input.addEventListener("change", () => {
      if (input.files && input.files.length > 0) send(input.files[0]);
    });

    // Drop anywhere on the page.
    document.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      document.body.classList.add("dragging");
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) document.body.classList.remove("dragging");
    });
    document.addEventListener("dragover", (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
    document.addEventListener("drop", (event) => {
      depth = 0;
      document.body.classList.remove("dragging");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (!file) return;
      event.preventDefault();
      send(file);
    });

    // Paste an image from the clipboard.
    document.addEventListener("paste", (event) => {
      const items = event.clipboardData ? Array.from(event.clipboardData.files) : [];
      const file = items.find((f) => f.type.startsWith("image/")) || items[0];
      if (!file) return;
      event.preventDefault();
      send(file);
    });

    function hasFiles(event) {
      return event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
    }

    function send(file) {
      const data = new FormData();
      const expiry = document.getElementById("expires_in");
      if (expiry) data.append("expires_in", expiry.value);
      data.append("file", file, file.name || "pasted-image");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/images");
      xhr.responseType = "json";
      progress.hidden = false;
      progress.value = 0;
      say("Uploading " + (file.name || "image") + "…", false);
      result.hidden = true;
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) progress.value = event.loaded / event.total;
      });
      xhr.addEventListener("load", () => {
        progress.value = 1;
        const body = xhr.response;
        if (xhr.status === 201 && body) {
          say("Uploaded.", false);
          show(body);
        } else {
          const message = body && body.error ? body.error.message : "The upload failed (" + xhr.status + ").";
          say(message, true);
          progress.hidden = true;
        }
      });
      xhr.addEventListener("error", () => {
        say("The upload failed: the server could not be reached.", true);
        progress.hidden = true;
      });
      xhr.send(data);
    }

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("error", isError);
      status.setAttribute("role", isError ? "alert" : "status");
    }

    function show(image) {
      result.replaceChildren();
      const heading = el("h2", { class: "result-title" });
      // A line-break opportunity between the words of the name.
      image.name.split(/(?<=[a-z])(?=[A-Z])/).forEach((word, i) => {
        if (i > 0) heading.append(document.createElement("wbr"));
        heading.append(word);
      });
      const figure = el("figure");
      const img = el("img", { src: image.image_url, alt: "Uploaded picture " + image.name, width: image.width, height: image.height });
      img.id = "result-image";
      figure.append(img, el("figcaption", {}, image.width + "×" + image.height + " pixels"));
      const page = el("p");
      page.append(el("a", { href: image.page_url }, "Open the picture's page"));
      const sizes = el("ul", { class: "plain sizes" });
      for (const size of image.sizes) {
        const li = el("li");
        // A size not made yet gets an empty square, never the original.
        const thumb = size.state === "ready"
          ? el("img", { class: "thumb", alt: "", width: 48, height: 48, src: size.url })
          : el("span", { class: "thumb" });
        li.append(thumb, el("a", { href: size.page_url, class: "size-link" }, cap(size.name)), " " + size.width + "×" + size.height);
        sizes.append(li);
      }
      const copies = el("div", { class: "copies" });
      const extension = { "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp" }[image.content_type] || "";
      copies.append(copyRow("Page link", image.page_url), copyRow("Image link", image.image_url + extension));
      const del = el("div", { class: "delete-link" });
      del.append(
        el("p", {}, "Delete link (shown only once; anyone with it can delete this picture):"),
        el("a", { href: image.delete_url, id: "delete-link" }, image.delete_url)
      );
      result.append(heading, figure, page, el("h2", {}, "Sizes"), sizes, copies, del);
      result.hidden = false;
      heading.tabIndex = -1;
      heading.focus();
    }
  }

  function copyRow(label, value) {
    const row = el("div", { class: "copy-row" });
    const id = "copy-" + Math.random().toString(36).slice(2);
    const input = el("input", { id: id, value: value, readonly: "" });
    const button = el("button", { type: "button", class: "secondary", "data-copy": id }, "Copy");
    wireCopyButton(button);
    row.append(el("label", { for: id }, label), input, button);
    return row;
  }

  function wireCopyButton(button) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.getAttribute("data-copy"));
      if (!input) return;
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (_) {
        input.select();
        document.execCommand("copy");
      }
      const before = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = before), 1500);
    });
  }

  function cap(word) {
    return word.charAt(0).toUpperCase() + word.slice(1);
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }
})();

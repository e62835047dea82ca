// Kitteh's upload page and show page. No framework, no inline script: the
// Content-Security-Policy allows only this file. Without JavaScript the
// plain form still works.
"use strict";

(function () {
  // "My uploads" in this browser: newest first, at most 500.
  const STORE = "kitteh.uploads";
  // BlurHash's base 83.
  const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
  const form = document.getElementById("upload-form");
  if (form) setUpUploader(form);
  document.querySelectorAll("[data-copy]").forEach(wireCopyButton);
  document.querySelectorAll(".frame, .thumb-frame").forEach(hidePlaceholderOnLoad);
  const mine = document.getElementById("mine");
  if (mine && mine.dataset.source === "browser") showMyUploads(mine);

  // The BlurHash placeholder under a picture goes once the picture is in.
  function hidePlaceholderOnLoad(frame) {
    const picture = frame.querySelector("img:not(.placeholder)");
    if (!picture) return;
    const done = () => frame.classList.add("loaded");
    if (picture.complete && picture.naturalWidth > 0) done();
    else picture.addEventListener("load", done);
  }

  function setUpUploader(form) {
    const input = form.querySelector("input[type=file]");
    const progress = document.getElementById("progress");
    const status = document.getElementById("status");
    const result = document.getElementById("result");
    let depth = 0;

    form.addEventListener("submit", (event) => {
      if (!input.files || input.files.length === 0) return;
      event.preventDefault();
      sendAll(Array.from(input.files));
    });
    input.addEventListener("change", () => {
      if (input.files && input.files.length > 0) sendAll(Array.from(input.files));
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
      const files = event.dataTransfer ? Array.from(event.dataTransfer.files) : [];
      if (files.length === 0) return;
      event.preventDefault();
      sendAll(files);
    });

    // Paste an image from the clipboard.
    document.addEventListener("paste", (event) => {
      const items = event.clipboardData ? Array.from(event.clipboardData.files) : [];
      const images = items.filter((f) => f.type.startsWith("image/"));
      const files = images.length > 0 ? images : items.slice(0, 1);
      if (files.length === 0) return;
      event.preventDefault();
      sendAll(files);
    });

    function hasFiles(event) {
      return event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
    }

    // One file: the result in full, as always. Several: a row each, with
    // its own progress and result, at most three uploading at once.
    function sendAll(files) {
      if (files.length === 1) {
        send(files[0]);
        return;
      }
      result.hidden = true;
      progress.hidden = true;
      say("Uploading " + files.length + " pictures…", false);
      let queue = document.getElementById("queue");
      if (!queue) {
        queue = el("ul", { id: "queue", class: "plain queue", "aria-live": "polite" });
        form.after(queue);
      }
      queue.replaceChildren();
      const rows = files.map((file) => {
        const row = el("li", { class: "queued" });
        const bar = el("progress", { max: "1", value: "0", "aria-label": "Upload of " + (file.name || "a picture") });
        const state = el("span", { class: "state" }, "waiting");
        row.append(el("span", { class: "file" }, file.name || "pasted picture"), bar, state);
        queue.append(row);
        return { file, row, bar, state };
      });
      let next = 0;
      let finished = 0;
      let stored = 0;
      const worker = () => {
        if (next >= rows.length) return;
        const job = rows[next++];
        job.state.textContent = "uploading";
        upload(job.file, (fraction) => (job.bar.value = fraction), (status, body) => {
          job.bar.value = 1;
          if (status === 201 && body) {
            stored += 1;
            remember(body);
            job.row.classList.add("done");
            const link = el("a", { href: body.page_url, class: "page-link" }, body.name);
            job.state.replaceChildren(link);
          } else {
            job.row.classList.add("failed");
            job.state.className = "state error";
            job.state.textContent = errorMessage(status, body);
          }
          finished += 1;
          if (finished === rows.length) {
            say("Uploaded " + stored + " of " + rows.length + ".", stored < rows.length);
          }
          worker();
        });
      };
      for (let i = 0; i < Math.min(3, rows.length); i++) worker();
    }

    function errorMessage(status, body) {
      if (status === 0) return "The upload failed: the server could not be reached.";
      return body && body.error ? body.error.message : "The upload failed (" + status + ").";
    }

    // Posts one file; reports progress, then (status, JSON body).
    function upload(file, onProgress, onDone) {
      const data = new FormData();
      const expiry = document.getElementById("expires_in");
      if (expiry) data.append("expires_in", expiry.value);
      data.append("file", file, file.name || "pasted-image");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/images");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => onDone(xhr.status, xhr.response));
      xhr.addEventListener("error", () => onDone(0, null));
      xhr.send(data);
    }

    function send(file) {
      progress.hidden = false;
      progress.value = 0;
      say("Uploading " + (file.name || "image") + "…", false);
      result.hidden = true;
      upload(file, (fraction) => (progress.value = fraction), (status, body) => {
        progress.value = 1;
        if (status === 201 && body) {
          say("Uploaded.", false);
          remember(body);
          show(body);
        } else {
          say(errorMessage(status, body), true);
          progress.hidden = true;
        }
      });
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


  function stored() {
    try {
      const list = JSON.parse(localStorage.getItem(STORE) || "[]");
      return Array.isArray(list) ? list : [];
    } catch (_) {
      return [];
    }
  }

  function keep(list) {
    try {
      localStorage.setItem(STORE, JSON.stringify(list.slice(0, 500)));
    } catch (_) {
      // Storage full or off: the upload itself is done.
    }
  }

  function remember(image) {
    const small = (image.sizes || []).filter((s) => s.state === "ready").sort((a, b) => a.width - b.width)[0];
    const list = stored().filter((item) => item.token !== image.token);
    list.unshift({
      token: image.token,
      name: image.name,
      page_url: image.page_url,
      thumb_url: small ? small.url : image.image_url,
      delete_url: image.delete_url,
      delete_token: image.delete_token,
      blurhash: image.blurhash || null,
      created_at: image.created_at,
    });
    keep(list);
  }

  function showMyUploads(list) {
    const forget = document.getElementById("forget-list");
    const empty = document.getElementById("mine-empty");
    const draw = () => {
      const items = stored();
      list.replaceChildren();
      empty.hidden = items.length > 0;
      forget.hidden = items.length === 0;
      for (const item of items) {
        const row = el("li", { "data-token": item.token });
        const frame = el("span", { class: "thumb-frame" });
        const blur = item.blurhash ? blurhashDataUrl(item.blurhash) : null;
        if (blur) frame.append(el("img", { class: "thumb placeholder", src: blur, alt: "", "aria-hidden": "true", width: 48, height: 48 }));
        frame.append(el("img", { class: "thumb", src: item.thumb_url, alt: "", width: 48, height: 48, loading: "lazy" }));
        hidePlaceholderOnLoad(frame);
        const del = el("button", { type: "button", class: "secondary", "data-action": "delete" }, "Delete");
        del.addEventListener("click", async () => {
          del.disabled = true;
          let gone = false;
          try {
            const res = await fetch("/api/images/" + encodeURIComponent(item.token), {
              method: "DELETE",
              headers: { "X-Delete-Token": item.delete_token || "" },
            });
            gone = res.status === 204 || res.status === 404 || res.status === 410;
            if (!gone) {
              const body = await res.json().catch(() => null);
              row.append(el("span", { class: "error" }, errorText(res.status, body)));
            }
          } catch (_) {
            row.append(el("span", { class: "error" }, "The server could not be reached."));
          }
          if (gone) {
            keep(stored().filter((other) => other.token !== item.token));
            draw();
          } else {
            del.disabled = false;
          }
        });
        row.append(frame, el("a", { href: item.page_url }, item.name), del);
        list.append(row);
      }
    };
    forget.addEventListener("click", () => {
      localStorage.removeItem(STORE);
      draw();
    });
    draw();
  }

  function errorText(status, body) {
    return body && body.error ? body.error.message : "Deleting failed (" + status + ").";
  }

  // BlurHash decoding (https://blurha.sh), painted on a canvas: a data: URL
  // is all the Content-Security-Policy lets a picture be.

  function decode83(text) {
    let value = 0;
    for (const c of text) {
      const digit = DIGITS.indexOf(c);
      if (digit < 0) return NaN;
      value = value * 83 + digit;
    }
    return value;
  }

  function toLinear(v) {
    const x = v / 255;
    return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
  }

  function toSrgb(v) {
    const x = Math.max(0, Math.min(1, v));
    return x <= 0.0031308 ? Math.round(x * 12.92 * 255 + 0.5) : Math.round((1.055 * Math.pow(x, 1 / 2.4) - 0.055) * 255 + 0.5);
  }

  function blurhashDataUrl(hash) {
    if (typeof hash !== "string" || hash.length < 6) return null;
    const size = decode83(hash[0]);
    const ny = Math.floor(size / 9) + 1;
    const nx = (size % 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) return null;
    const max = (decode83(hash[1]) + 1) / 166;
    const dc = decode83(hash.substring(2, 6));
    const colours = [[toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]];
    const signPow = (v) => Math.sign(v) * v * v;
    for (let i = 1; i < nx * ny; i++) {
      const v = decode83(hash.substring(4 + i * 2, 6 + i * 2));
      colours.push([signPow((Math.floor(v / 361) - 9) / 9) * max, signPow(((Math.floor(v / 19) % 19) - 9) / 9) * max, signPow(((v % 19) - 9) / 9) * max]);
    }
    if (colours.some((c) => c.some(Number.isNaN))) return null;
    const w = 32;
    const h = 32;
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const context = canvas.getContext("2d");
    if (!context) return null;
    const pixels = context.createImageData(w, h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let j = 0; j < ny; j++) {
          for (let i = 0; i < nx; i++) {
            const basis = Math.cos((Math.PI * x * i) / w) * Math.cos((Math.PI * y * j) / h);
            const c = colours[i + j * nx];
            r += c[0] * basis;
            g += c[1] * basis;
            b += c[2] * basis;
          }
        }
        const p = 4 * (x + y * w);
        pixels.data[p] = toSrgb(r);
        pixels.data[p + 1] = toSrgb(g);
        pixels.data[p + 2] = toSrgb(b);
        pixels.data[p + 3] = 255;
      }
    }
    context.putImageData(pixels, 0, 0);
    return canvas.toDataURL("image/png");
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

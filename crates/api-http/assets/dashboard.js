// Lockstep's dashboard: the live parts of pages (Server-Sent Events), a build's log with its
// ANSI colours, and the `needs` edges of a pipeline's graph. Plain JavaScript with no build
// step: the server embeds this file as it is.
"use strict";

(function () {
  // The most log text the page keeps: a 20 MB log stays responsive because only its end is
  // in the page; the raw log has all of it.
  const MAX_LOG_CHARS = 2000000;

  document.addEventListener("DOMContentLoaded", () => {
    for (const region of document.querySelectorAll("[data-live]")) {
      const source = new EventSource(region.dataset.live);
      source.addEventListener("fragment", (event) => swap(region, event.data));
    }
    followLog();
    drawEdges();
    window.addEventListener("resize", drawEdges);
  });

  // Replaces a live region's content, keeping keyboard focus on the same button or link. A
  // fragment equal to what the region shows (the first one a stream sends usually is) leaves
  // the region alone, so nothing under the pointer is replaced for nothing.
  function swap(region, html) {
    const next = document.createElement("div");
    next.innerHTML = html;
    if (same(region, next)) return;
    const focused = region.contains(document.activeElement) ? describe(document.activeElement) : null;
    region.innerHTML = html;
    if (focused) {
      const again = region.querySelector(focused);
      if (again) again.focus();
    }
    drawEdges();
  }

  // Whether two regions hold the same elements and text, leaving aside blank text between them
  // and the edges this script draws.
  function same(region, next) {
    const shown = region.cloneNode(true);
    for (const svg of shown.querySelectorAll("svg.edges")) {
      svg.replaceChildren();
      svg.removeAttribute("width");
      svg.removeAttribute("height");
    }
    const nodes = (parent) =>
      Array.from(parent.childNodes).filter((n) => n.nodeType !== Node.TEXT_NODE || n.textContent.trim());
    const a = nodes(shown);
    const b = nodes(next);
    return a.length === b.length && a.every((node, i) => node.isEqualNode(b[i]));
  }

  function describe(element) {
    const form = element.closest("form[action]");
    if (form) return `form[action="${CSS.escape(form.getAttribute("action"))}"] button`;
    if (element.getAttribute("href")) return `a[href="${CSS.escape(element.getAttribute("href"))}"]`;
    return null;
  }

  // ---- The build log ----

  function followLog() {
    const log = document.getElementById("log");
    if (!log) return;
    const region = document.getElementById("live");
    const follow = document.getElementById("follow");
    const note = document.getElementById("log-note");
    const writer = new LogWriter(log, note, log.dataset.partial === "true");
    const source = new EventSource(log.dataset.stream);
    source.addEventListener("fragment", (event) => swap(region, event.data));
    source.addEventListener("log", (event) => {
      writer.write(JSON.parse(event.data).text);
      if (follow && follow.checked) writer.scrollDown = true;
    });
    source.addEventListener("end", () => {
      source.close();
      writer.finish(() => { log.dataset.complete = "true"; });
    });
  }

  // Writes log text into the page at most once per frame, however fast it arrives.
  class LogWriter {
    // `partial`: the text starts inside the log, most likely inside a line, which is dropped.
    constructor(log, note, partial) {
      this.log = log;
      this.partial = partial;
      this.note = note;
      this.ansi = new Ansi();
      this.queued = [];
      this.chars = 0;
      this.scheduled = false;
      this.scrollDown = false;
      this.done = null;
    }

    write(text) {
      if (this.partial) {
        const newline = text.indexOf("\n");
        if (newline < 0) return;
        text = text.slice(newline + 1);
        this.partial = false;
      }
      this.queued.push(text);
      this.schedule();
    }

    finish(done) {
      this.done = done;
      this.schedule();
    }

    schedule() {
      if (this.scheduled) return;
      this.scheduled = true;
      requestAnimationFrame(() => this.flush());
    }

    flush() {
      this.scheduled = false;
      const fragment = document.createDocumentFragment();
      for (const text of this.queued) {
        for (const [style, piece] of this.ansi.parse(text)) {
          fragment.appendChild(node(style, piece));
          this.chars += piece.length;
        }
      }
      this.queued = [];
      this.log.appendChild(fragment);
      this.trim();
      if (this.scrollDown) {
        this.log.scrollTop = this.log.scrollHeight;
        this.scrollDown = false;
      }
      if (this.done) {
        const done = this.done;
        this.done = null;
        done();
      }
    }

    // Drops the oldest text once the page holds too much of it.
    trim() {
      if (this.chars <= MAX_LOG_CHARS) return;
      while (this.chars > MAX_LOG_CHARS * 0.75 && this.log.firstChild) {
        this.chars -= this.log.firstChild.textContent.length;
        this.log.removeChild(this.log.firstChild);
      }
      if (this.note) this.note.textContent = "Earlier lines are hidden to keep the page fast; the raw log has them all.";
    }
  }

  function node(style, text) {
    if (!style.classes.length && !style.color && !style.background) return document.createTextNode(text);
    const span = document.createElement("span");
    if (style.classes.length) span.className = style.classes.join(" ");
    // Set through the DOM, which the page's Content-Security-Policy allows; inline style
    // attributes it does not.
    if (style.color) span.style.color = style.color;
    if (style.background) span.style.backgroundColor = style.background;
    span.textContent = text;
    return span;
  }

  // An ANSI escape-sequence reader that keeps its state between chunks: a colour set in one
  // chunk holds in the next, and a sequence cut in two is read whole.
  class Ansi {
    constructor() {
      this.reset();
      this.pending = "";
    }

    reset() {
      this.fg = null;
      this.bg = null;
      this.bold = false;
      this.dim = false;
      this.italic = false;
      this.underline = false;
    }

    // Yields [style, text] for each run of text in one style.
    *parse(chunk) {
      let text = this.pending + chunk;
      this.pending = "";
      let start = 0;
      let i = 0;
      while (i < text.length) {
        if (text.charCodeAt(i) !== 0x1b) {
          i++;
          continue;
        }
        const end = sequenceEnd(text, i);
        if (end < 0) {
          // Cut at the end of this chunk: read it with the next.
          this.pending = text.slice(i);
          text = text.slice(0, i);
          break;
        }
        if (i > start) yield [this.style(), text.slice(start, i)];
        const sequence = text.slice(i, end);
        if (sequence.startsWith("\x1b[") && sequence.endsWith("m")) this.apply(sequence.slice(2, -1));
        i = end;
        start = end;
      }
      if (start < text.length) yield [this.style(), text.slice(start)];
    }

    apply(params) {
      const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
      for (let k = 0; k < codes.length; k++) {
        const code = codes[k];
        if (code === 0) this.reset();
        else if (code === 1) this.bold = true;
        else if (code === 2) this.dim = true;
        else if (code === 3) this.italic = true;
        else if (code === 4) this.underline = true;
        else if (code === 22) { this.bold = false; this.dim = false; }
        else if (code === 23) this.italic = false;
        else if (code === 24) this.underline = false;
        else if (code >= 30 && code <= 37) this.fg = code - 30;
        else if (code >= 90 && code <= 97) this.fg = code - 90 + 8;
        else if (code === 39) this.fg = null;
        else if (code >= 40 && code <= 47) this.bg = code - 40;
        else if (code >= 100 && code <= 107) this.bg = code - 100 + 8;
        else if (code === 49) this.bg = null;
        else if (code === 38 || code === 48) {
          const [colour, used] = extended(codes, k + 1);
          if (code === 38) this.fg = colour;
          else this.bg = colour;
          k += used;
        }
      }
    }

    style() {
      const classes = [];
      let color = null;
      let background = null;
      if (typeof this.fg === "number") classes.push(`fg-${this.fg}`);
      else if (this.fg) color = this.fg;
      if (typeof this.bg === "number") classes.push(`bg-${this.bg}`);
      else if (this.bg) background = this.bg;
      if (this.bold) classes.push("bold");
      if (this.dim) classes.push("dim");
      if (this.italic) classes.push("italic");
      if (this.underline) classes.push("underline");
      return { classes, color, background };
    }
  }

  // Where the escape sequence starting at `i` ends (exclusive), or -1 if the text ends first.
  function sequenceEnd(text, i) {
    if (i + 1 >= text.length) return -1;
    const kind = text[i + 1];
    if (kind === "[") {
      // CSI: parameters, then one final byte from @ to ~.
      for (let j = i + 2; j < text.length; j++) {
        const c = text.charCodeAt(j);
        if (c >= 0x40 && c <= 0x7e) return j + 1;
      }
      return -1;
    }
    if (kind === "]") {
      // OSC (a window title, a link): ends with BEL or ESC \.
      for (let j = i + 2; j < text.length; j++) {
        if (text[j] === "\x07") return j + 1;
        if (text[j] === "\x1b" && text[j + 1] === "\\") return j + 2;
      }
      return -1;
    }
    return i + 2;
  }

  // A 256-colour (5;n) or true-colour (2;r;g;b) argument: the colour and how many codes it used.
  function extended(codes, k) {
    if (codes[k] === 5 && k + 1 < codes.length) {
      const n = codes[k + 1];
      if (n < 16) return [n, 2];
      return [palette(n), 2];
    }
    if (codes[k] === 2 && k + 3 < codes.length) {
      return [`rgb(${codes[k + 1]}, ${codes[k + 2]}, ${codes[k + 3]})`, 4];
    }
    return [null, 0];
  }

  function palette(n) {
    if (n >= 232) {
      const grey = 8 + (n - 232) * 10;
      return `rgb(${grey}, ${grey}, ${grey})`;
    }
    const cube = n - 16;
    const level = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${level(Math.floor(cube / 36))}, ${level(Math.floor(cube / 6) % 6)}, ${level(cube % 6)})`;
  }

  // ---- The pipeline graph ----

  const SVG = "http://www.w3.org/2000/svg";

  // Draws an edge from each job to every job that needs it, between the cards as laid out.
  function drawEdges() {
    const graph = document.getElementById("graph");
    if (!graph) return;
    const svg = graph.querySelector("svg.edges");
    if (!svg) return;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("width", graph.scrollWidth);
    svg.setAttribute("height", graph.scrollHeight);
    const box = graph.getBoundingClientRect();
    const cards = new Map();
    for (const card of graph.querySelectorAll(".job")) cards.set(card.dataset.name, card);
    for (const card of cards.values()) {
      for (const need of needsOf(card)) {
        const from = cards.get(need);
        if (from) svg.appendChild(edge(from, card, box, graph));
      }
    }
  }

  function needsOf(card) {
    try {
      const needs = JSON.parse(card.dataset.needs || "[]");
      return Array.isArray(needs) ? needs : [];
    } catch (_) {
      return [];
    }
  }

  function edge(from, to, box, graph) {
    const a = from.getBoundingClientRect();
    const b = to.getBoundingClientRect();
    const dx = graph.scrollLeft - box.left;
    const dy = graph.scrollTop - box.top;
    const y1 = a.top + a.height / 2 + dy;
    const y2 = b.top + b.height / 2 + dy;
    let d;
    if (b.left > a.right) {
      const x1 = a.right + dx;
      const x2 = b.left + dx;
      const mid = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
    } else {
      // Needs within one stage: a loop out to the right of the column.
      const x = Math.max(a.right, b.right) + dx;
      d = `M${x},${y1} C${x + 24},${y1} ${x + 24},${y2} ${x},${y2}`;
    }
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", `edge status-${from.dataset.status}`);
    path.dataset.from = from.dataset.name;
    path.dataset.to = to.dataset.name;
    return path;
  }
})();

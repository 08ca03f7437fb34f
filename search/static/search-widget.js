/* Search box for the blog: enhances the server-rendered page at "/" and, as an
 * embeddable widget, builds the same box inside <div data-search-widget
 * data-endpoint="https://search.example.com"></div> on any page.
 * Text from the server is inserted only as text nodes; the only element made
 * from a snippet is <mark>. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 200;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  var decoder = document.createElement("textarea");
  function decode(escaped) { decoder.innerHTML = escaped; return decoder.value; }

  /* "a &lt;b&gt; <mark>c</mark>" -> text and <mark> nodes, nothing else. */
  function marked(html) {
    var frag = document.createDocumentFragment();
    html.split(/(<mark>[\s\S]*?<\/mark>)/).forEach(function (part) {
      if (!part) return;
      var m = /^<mark>([\s\S]*)<\/mark>$/.exec(part);
      if (m) frag.appendChild(el("mark", {}, decode(m[1])));
      else frag.appendChild(document.createTextNode(decode(part)));
    });
    return frag;
  }

  function SearchBox(root, endpoint, usesUrl) {
    this.root = root;
    this.endpoint = endpoint.replace(/\/$/, "");
    this.usesUrl = usesUrl;
    this.state = { q: "", tags: [], type: "", sort: "relevance", page: 1, perPage: 0 };
    this.composing = false;
    this.timer = null;
    this.seq = 0;
    this.suggestSeq = 0;
    this.typingEntry = false;  // the history entry of the words being typed exists
    this.build();
  }

  SearchBox.prototype.build = function () {
    var r = this.root;
    if (!r.querySelector(".search-form")) {
      r.classList.add("search-app");
      var id = "sw-" + Math.random().toString(36).slice(2);
      r.innerHTML = "";
      var form = el("form", { "class": "search-form", role: "search" });
      form.appendChild(el("label", { "for": id + "-q" }, "キーワード"));
      var row = el("div", { "class": "search-row" });
      row.appendChild(el("input", { id: id + "-q", name: "q", type: "search", autocomplete: "off", maxlength: "256",
        role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": id + "-s" }));
      row.appendChild(el("button", { type: "submit" }, "検索"));
      form.appendChild(row);
      var ul = el("ul", { id: id + "-s", "class": "search-suggest", role: "listbox" }); ul.hidden = true;
      form.appendChild(ul);
      var sort = el("select", { name: "sort", "aria-label": "並び順" });
      sort.appendChild(el("option", { value: "relevance" }, "関連度順"));
      sort.appendChild(el("option", { value: "date" }, "新しい順"));
      form.appendChild(sort);
      r.appendChild(form);
      r.appendChild(el("div", { "class": "search-status", role: "status", "aria-live": "polite" }));
      r.appendChild(el("div", { "class": "search-selected" }));
      r.appendChild(el("nav", { "class": "search-facets", "aria-label": "タグで絞り込む" }));
      r.appendChild(el("ol", { "class": "search-results" }));
    }
    this.form = r.querySelector(".search-form");
    this.input = this.form.querySelector("input[name=q]");
    this.sort = this.form.querySelector("select[name=sort]");
    this.suggestList = this.form.querySelector(".search-suggest");
    this.status = r.querySelector(".search-status");
    this.selected = r.querySelector(".search-selected");
    this.facets = r.querySelector(".search-facets");
    this.results = r.querySelector(".search-results");
    var pages = r.querySelector(".search-pages");
    this.more = el("button", { type: "button", "class": "search-more" }, "もっと見る");
    // The server's page links give way to "more"; keep it when there is a next page.
    this.more.hidden = !(pages && pages.querySelector("a[rel=next]"));
    if (pages) pages.remove();
    r.appendChild(this.more);
    this.bind();
  };

  SearchBox.prototype.bind = function () {
    var self = this;
    this.input.addEventListener("compositionstart", function () { self.composing = true; });
    this.input.addEventListener("compositionend", function () { self.composing = false; self.typed(); });
    this.input.addEventListener("input", function (e) {
      if (self.composing || e.isComposing) return;
      self.typed();
    });
    this.input.addEventListener("keydown", function (e) { self.keys(e); });
    this.input.addEventListener("blur", function () { self.hideSuggest(); });  // a pick is a mousedown, before it
    this.form.addEventListener("submit", function (e) {
      e.preventDefault();
      clearTimeout(self.timer);
      self.hideSuggest();
      self.state.q = self.input.value; self.state.page = 1;
      self.run(true);
    });
    this.sort.addEventListener("change", function () {
      self.state.sort = self.sort.value; self.state.page = 1; self.run(true);
    });
    this.more.addEventListener("click", function () { self.state.page += 1; self.run(false, true); });
    this.results.addEventListener("keydown", function (e) { self.resultKeys(e); });
    this.results.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a.hit-title");
      if (a && navigator.sendBeacon) {
        navigator.sendBeacon(self.endpoint + "/api/click",
          new Blob([JSON.stringify({ q: self.state.q, slug: a.getAttribute("data-slug") || "" })], { type: "application/json" }));
      }
    });
    if (this.usesUrl) {
      this.titleBase = document.title.replace(/^.* - /, "");
      window.addEventListener("popstate", function () { self.typingEntry = false; self.fromUrl(); self.run(false); });
      this.fromUrl();
      this.wireServerChips();
    }
  };

  SearchBox.prototype.fromUrl = function () {
    var p = new URLSearchParams(location.search);
    var page = parseInt(p.get("page"), 10), perPage = parseInt(p.get("per_page"), 10);
    this.state = { q: p.get("q") || "", tags: p.getAll("tag").filter(function (t) { return t.trim(); }),
      type: p.get("type") || "", sort: p.get("sort") === "date" ? "date" : "relevance",
      page: page >= 1 && page <= 100 ? page : 1, perPage: perPage >= 1 && perPage <= 50 ? perPage : 0 };
    this.input.value = this.state.q;
    this.sort.value = this.state.sort;
  };

  SearchBox.prototype.wireServerChips = function () {
    // Server-rendered chips are plain links; the script takes them over.
    var self = this;
    [this.facets, this.selected].forEach(function (box) {
      box.addEventListener("click", function (e) {
        var a = e.target.closest && e.target.closest("a.chip");
        if (!a || a.getAttribute("data-js")) return;
        e.preventDefault();
        var url = new URL(a.href, location.href);
        self.state.tags = url.searchParams.getAll("tag"); self.state.page = 1;
        self.run(true);
      });
    });
  };

  SearchBox.prototype.typed = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () {
      self.state.q = self.input.value; self.state.page = 1;
      // Typing adds one history entry, which later keystrokes update: "back"
      // returns to the search before, not to every prefix of the words typed.
      self.run(true, false, self.typingEntry);
      self.typingEntry = true;
      self.suggest();
    }, DEBOUNCE_MS);
  };

  SearchBox.prototype.params = function () {
    var p = new URLSearchParams();
    if (this.state.q) p.set("q", this.state.q);
    this.state.tags.forEach(function (t) { p.append("tag", t); });
    if (this.state.type) p.set("type", this.state.type);
    if (this.state.sort !== "relevance") p.set("sort", this.state.sort);
    if (this.state.perPage) p.set("per_page", String(this.state.perPage));
    return p;
  };

  SearchBox.prototype.run = function (push, append, replace) {
    var self = this;
    var p = this.params();
    if (push && !replace) this.typingEntry = false;
    if (this.usesUrl && push) {
      var query = p.toString();
      var url = query ? "?" + query : location.pathname;
      if ((query ? "?" + query : "") !== location.search) {
        if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
      }
    }
    if (this.usesUrl) document.title = (this.state.q ? this.state.q + " - " : "") + this.titleBase;
    if (!this.state.q && !this.state.tags.length && !this.state.type) { this.clear(); return; }
    p.set("page", String(this.state.page));
    var seq = ++this.seq;
    fetch(this.endpoint + "/api/search?" + p.toString(), { headers: { Accept: "application/json" } })
      .then(function (res) { return res.json().then(function (data) { return { ok: res.ok, data: data }; }); })
      .then(function (r) {
        if (seq !== self.seq) return;
        if (!r.ok) { self.error(r.data.error || "検索できませんでした"); return; }
        self.render(r.data, append);
      })
      .catch(function () { if (seq === self.seq) self.error("検索サーバーに接続できませんでした"); });
  };

  SearchBox.prototype.clear = function () {
    this.status.textContent = ""; this.selected.textContent = ""; this.facets.textContent = "";
    this.results.textContent = ""; this.more.hidden = true;
  };

  SearchBox.prototype.error = function (msg) {
    this.status.textContent = "";
    this.status.appendChild(el("p", { "class": "search-error" }, msg));
  };

  SearchBox.prototype.render = function (data, append) {
    var self = this;
    this.status.textContent = "";
    this.status.appendChild(el("p", {}, data.total ? data.total + " 件" : "見つかりませんでした。"));
    if (data.suggestion) {
      var p = el("p", {}, "もしかして: ");
      var a = el("a", { href: "?q=" + encodeURIComponent(data.suggestion), "class": "search-suggestion" }, data.suggestion);
      a.addEventListener("click", function (e) {
        e.preventDefault(); self.input.value = data.suggestion; self.state.q = data.suggestion; self.state.page = 1; self.run(true);
      });
      p.appendChild(a);
      this.status.appendChild(p);
    }
    this.selected.textContent = "";
    this.state.tags.forEach(function (t) {
      var chip = el("button", { type: "button", "class": "chip chip-selected", "aria-label": "タグ " + t + " を外す" }, t + " ×");
      chip.addEventListener("click", function () {
        self.state.tags = self.state.tags.filter(function (x) { return x !== t; }); self.state.page = 1; self.run(true);
      });
      self.selected.appendChild(chip);
    });
    this.facets.textContent = "";
    (data.facets.tags || []).forEach(function (f) {
      if (f.selected) return;
      var chip = el("button", { type: "button", "class": "chip", "data-tag": f.value }, f.value + " ");
      chip.appendChild(el("span", { "class": "count" }, String(f.count)));
      chip.addEventListener("click", function () {
        self.state.tags = self.state.tags.concat([f.value]); self.state.page = 1; self.run(true);
      });
      self.facets.appendChild(chip);
    });
    if (!append) this.results.textContent = "";
    data.hits.forEach(function (hit) {
      var li = el("li", { "class": "search-hit" });
      var a = el("a", { "class": "hit-title", href: hit.url, "data-slug": hit.slug });
      a.appendChild(marked(hit.title_html));
      li.appendChild(a);
      var meta = el("div", { "class": "hit-meta" });
      if (hit.date) meta.appendChild(el("time", { datetime: hit.date }, hit.date));
      hit.tags.forEach(function (t) { meta.appendChild(el("span", { "class": "tag" }, t)); });
      li.appendChild(meta);
      var sn = el("p", { "class": "hit-snippet" });
      sn.appendChild(marked(hit.snippet));
      li.appendChild(sn);
      self.results.appendChild(li);
    });
    this.more.hidden = data.page * data.per_page >= data.total;
  };

  SearchBox.prototype.suggest = function () {
    var self = this;
    var q = this.input.value;
    if (!q.trim()) { this.hideSuggest(); return; }
    var seq = ++this.suggestSeq;
    fetch(this.endpoint + "/api/suggest?q=" + encodeURIComponent(q))
      .then(function (res) { return res.ok ? res.json() : { suggestions: [] }; })
      .then(function (data) {
        // A search or a pick since the request was sent closes the list for good.
        if (seq !== self.suggestSeq || self.input.value !== q) return;
        self.input.removeAttribute("aria-activedescendant");
        self.suggestList.textContent = "";
        data.suggestions.forEach(function (s, i) {
          var li = el("li", { role: "option", id: self.suggestList.id + "-" + i, "aria-selected": "false" }, s.text);
          li.addEventListener("mousedown", function (e) { e.preventDefault(); self.pick(s.text); });
          self.suggestList.appendChild(li);
        });
        var any = data.suggestions.length > 0;
        self.suggestList.hidden = !any;
        self.input.setAttribute("aria-expanded", any ? "true" : "false");
      })
      .catch(function () { if (seq === self.suggestSeq) self.hideSuggest(); });
  };

  SearchBox.prototype.hideSuggest = function () {
    this.suggestSeq += 1;
    this.suggestList.hidden = true; this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  };

  SearchBox.prototype.pick = function (text) {
    this.input.value = text; this.hideSuggest(); this.state.q = text; this.state.page = 1; this.run(true);
  };

  SearchBox.prototype.keys = function (e) {
    if (e.isComposing || e.keyCode === 229) return;  // keys that belong to the IME
    var items = this.suggestList.hidden ? [] : Array.prototype.slice.call(this.suggestList.children);
    var current = items.findIndex(function (li) { return li.getAttribute("aria-selected") === "true"; });
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!items.length) {
        if (e.key === "ArrowDown") { var first = this.results.querySelector("a.hit-title"); if (first) { e.preventDefault(); first.focus(); } }
        return;
      }
      e.preventDefault();
      var next = e.key === "ArrowDown" ? Math.min(items.length - 1, current + 1) : Math.max(-1, current - 1);
      items.forEach(function (li, i) { li.setAttribute("aria-selected", i === next ? "true" : "false"); });
      if (next >= 0) this.input.setAttribute("aria-activedescendant", items[next].id);
    } else if (e.key === "Enter" && current >= 0) {
      e.preventDefault(); this.pick(items[current].textContent);
    } else if (e.key === "Escape" && items.length) {
      e.preventDefault();  // close the list only: a search box's own Escape would also clear the query
      this.hideSuggest();
    }
  };

  SearchBox.prototype.resultKeys = function (e) {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    var links = Array.prototype.slice.call(this.results.querySelectorAll("a.hit-title"));
    var i = links.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    if (e.key === "ArrowDown" && i + 1 < links.length) links[i + 1].focus();
    else if (e.key === "ArrowUp") (i > 0 ? links[i - 1] : this.input).focus();
  };

  function start() {
    var page = document.querySelector("[data-search-page]");
    if (page) new SearchBox(page, "", true);
    var widgets = document.querySelectorAll("[data-search-widget]");
    Array.prototype.forEach.call(widgets, function (w) {
      var endpoint = w.getAttribute("data-endpoint") || "";
      if (!document.querySelector("link[data-search-css]")) {
        var css = el("link", { rel: "stylesheet", href: endpoint.replace(/\/$/, "") + "/static/search.css", "data-search-css": "1" });
        document.head.appendChild(css);
      }
      new SearchBox(w, endpoint, false);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

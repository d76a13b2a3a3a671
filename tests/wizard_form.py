"""What a browser would send for a wizard page left untouched: every field's default, read from the HTML."""

from html.parser import HTMLParser


class _Defaults(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values, self._select, self._option, self._first, self._textarea = [], None, False, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.values.append((name, a.get("value", "on")))
            else:
                self.values.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select, self._chosen, self._first = name, None, None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            self._first = value if self._first is None else self._first
            if "selected" in a:
                self._chosen = value
        elif tag == "textarea" and name:
            self._textarea = name
            self.values.append((name, ""))

    def handle_data(self, data):
        if self._textarea:
            self.values[-1] = (self._textarea, data.strip())

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            self.values.append((self._select, self._chosen if self._chosen is not None else self._first or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def defaults(html):
    """{name: [values]} of the wizard form in `html`, as submitted without touching anything."""
    form = html[html.index('<form class="card wizard-form"'):]
    form = form[: form.index("</form>")]
    parser = _Defaults()
    parser.feed(form)
    out = {}
    for name, value in parser.values:
        if name != "csrfmiddlewaretoken":
            out.setdefault(name, []).append(value)
    return out

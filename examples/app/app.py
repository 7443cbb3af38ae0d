#!/usr/bin/env python3
"""An example third-party app for a payer's Patient Access API: a tiny personal health record.

A member clicks "Connect your health plan"; the app does a SMART App Launch 2.0 standalone
launch (discovery at the FHIR base, authorization code with PKCE S256 and state, as a public
client: no secret), exchanges the code, reads the member's Patient and claims
(ExplanationOfBenefit) and shows them. Python standard library only.

Settings (environment variables):
  FHIR_BASE      the payer's FHIR base URL (required)
  CLIENT_ID      the app's client id (default: onramp-app, the sandbox's public app client)
  CLIENT_SECRET  set only for a confidential client
  SCOPES         default: "launch/patient openid patient/*.read"
  HOST, PORT     where the app listens (default 127.0.0.1:8765); the redirect URI is
                 http://HOST:PORT/callback
  EXAMPLE_APP_BREAK  for onramp's own tests only: error-page (the callback answers 500),
                 hang (the callback never answers), other-member (shows someone else's
                 name), no-claims (shows none of the member's claims), no-conditions (shows
                 none of their health problems) or show-token (shows
                 its access token, as a careless debug page would)
"""

import base64
import hashlib
import html
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FHIR_BASE = os.environ.get("FHIR_BASE", "").rstrip("/")
CLIENT_ID = os.environ.get("CLIENT_ID", "onramp-app")
CLIENT_SECRET = os.environ.get("CLIENT_SECRET", "")
SCOPES = os.environ.get("SCOPES", "launch/patient openid patient/*.read")
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8765"))
REDIRECT_URI = f"http://{HOST}:{PORT}/callback"
BREAK = os.environ.get("EXAMPLE_APP_BREAK", "")

# One browser session per cookie: pending launches by state, then the member's data.
PENDING = {}
SESSIONS = {}
LOCK = threading.Lock()


def fetch_json(url, token=None, form=None):
    headers = {"Accept": "application/fhir+json, application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.load(response)


def smart_configuration():
    return fetch_json(f"{FHIR_BASE}/.well-known/smart-configuration")


def page(title, body):
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; color: #202124; }}
 header {{ display: flex; align-items: center; gap: .8rem; }}
 .logo {{ width: 2.4rem; height: 2.4rem; border-radius: .6rem; background: #1a73e8; }}
 a.button {{ display: inline-block; background: #1a73e8; color: #fff; padding: .7rem 1.2rem;
   border-radius: .4rem; text-decoration: none; font-weight: 600; }}
 table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
 th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }}
 .error {{ color: #b3261e; }}
</style></head>
<body><header><div class="logo"></div><h1>My Health Record</h1></header>{body}</body></html>"""


def money(total):
    for entry in total or []:
        value = (entry.get("amount") or {}).get("value")
        if isinstance(value, (int, float)) and value:
            return f"${value:,.2f}"
    return ""


def claims_table(bundle):
    if BREAK == "no-claims":
        return "<p>No claims yet.</p>"
    rows = []
    for entry in (bundle or {}).get("entry", []):
        eob = entry.get("resource") or {}
        if eob.get("resourceType") != "ExplanationOfBenefit":
            continue
        identifier = next(
            (i.get("value") for i in eob.get("identifier", []) if i.get("value")), eob.get("id", "")
        )
        date = (eob.get("billablePeriod") or {}).get("start") or eob.get("created", "")
        provider = (eob.get("provider") or {}).get("display", "")
        kind = ((eob.get("type") or {}).get("coding") or [{}])[0].get("display") or ""
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (identifier, date[:10], kind, provider, money(eob.get("total")))
            )
            + "</tr>"
        )
    if not rows:
        return "<p>No claims yet.</p>"
    return (
        "<table><thead><tr><th>Claim</th><th>Date</th><th>Type</th><th>Provider</th>"
        "<th>Total</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def conditions_list(bundle):
    if BREAK == "no-conditions":
        return "<p>No health problems on file.</p>"
    items = []
    for entry in (bundle or {}).get("entry", []):
        condition = entry.get("resource", {})
        if condition.get("resourceType") != "Condition":
            continue
        code = condition.get("code", {})
        words = code.get("text") or next(
            (c.get("display") for c in code.get("coding", []) if c.get("display")), "Unnamed"
        )
        since = condition.get("onsetDateTime", "")[:10]
        items.append(f"<li>{html.escape(words)}{' since ' + html.escape(since) if since else ''}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p>No health problems on file.</p>"


def member_name(patient):
    if BREAK == "other-member":
        return "Jane Roe"
    names = patient.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    given = " ".join(name.get("given") or [])
    return f"{given} {name.get('family', '')}".strip() or "(no name)"


class App(BaseHTTPRequestHandler):
    server_version = "ExampleApp/1"

    def log_message(self, format, *args):
        # The path only: a callback's query carries the authorization code.
        sys.stdout.write(f"{self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}\n")
        sys.stdout.flush()

    def session(self):
        cookie = self.headers.get("Cookie", "")
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "sid":
                return value
        return None

    def send(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location, headers=()):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        if path == "/":
            self.home()
        elif path == "/launch":
            self.launch()
        elif path == "/callback":
            self.callback(params)
        else:
            self.send(404, page("Not found", "<p>Not found.</p>"))

    def home(self):
        with LOCK:
            data = SESSIONS.get(self.session())
        if not data:
            self.send(
                200,
                page(
                    "My Health Record",
                    "<p>See your claims from your health plan in one place.</p>"
                    '<p><a class="button" href="/launch">Connect your health plan</a></p>',
                ),
            )
            return
        body = (
            f"<h2>Welcome, {html.escape(data['name'])}</h2>"
            f"<p>Connected to your health plan. Your claims:</p>{claims_table(data['claims'])}"
            f"<h3>Your health problems</h3>{conditions_list(data.get('conditions'))}"
        )
        if data.get("token"):
            body = f"<p>Debug: access token {html.escape(data['token'])}</p>" + body
        self.send(200, page("My Health Record", body))

    def launch(self):
        try:
            config = smart_configuration()
        except (urllib.error.URLError, ValueError) as error:
            self.send(502, page("Error", f'<p class="error">The health plan cannot be reached: {html.escape(str(error))}</p>'))
            return
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        sid = self.session() or secrets.token_urlsafe(24)
        with LOCK:
            PENDING[state] = {"verifier": verifier, "sid": sid, "token_endpoint": config["token_endpoint"]}
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPES,
                "state": state,
                "aud": FHIR_BASE,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        self.redirect(
            f"{config['authorization_endpoint']}?{query}",
            [("Set-Cookie", f"sid={sid}; Path=/; HttpOnly; SameSite=Lax")],
        )

    def callback(self, params):
        if BREAK == "hang":
            time.sleep(3600)
            return
        if BREAK == "error-page":
            self.send(500, page("Error", '<p class="error">Something went wrong. Please try again later.</p>'))
            return
        with LOCK:
            pending = PENDING.pop(params.get("state", ""), None)
        if "error" in params or pending is None or "code" not in params:
            reason = params.get("error", "the sign-in did not come back as expected")
            self.send(400, page("Error", f'<p class="error">Could not connect: {html.escape(reason)}</p>'))
            return
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "code_verifier": pending["verifier"],
        }
        if CLIENT_SECRET:
            form["client_secret"] = CLIENT_SECRET
        try:
            token = fetch_json(pending["token_endpoint"], form=form)
            access = token["access_token"]
            patient_id = token.get("patient")
            patient = fetch_json(f"{FHIR_BASE}/Patient/{patient_id}", access) if patient_id else {}
            claims = fetch_json(
                f"{FHIR_BASE}/ExplanationOfBenefit?"
                + urllib.parse.urlencode({"patient": patient_id} if patient_id else {}),
                access,
            )
        except (urllib.error.URLError, KeyError, ValueError) as error:
            self.send(502, page("Error", f'<p class="error">Could not read your data: {html.escape(str(error))}</p>'))
            return
        try:
            # Clinical data is optional: a plan that serves none still shows the claims.
            conditions = fetch_json(
                f"{FHIR_BASE}/Condition?" + urllib.parse.urlencode({"patient": patient_id}), access
            ) if patient_id else None
        except (urllib.error.URLError, ValueError):
            conditions = None
        with LOCK:
            SESSIONS[pending["sid"]] = {
                "name": member_name(patient),
                "claims": claims,
                "conditions": conditions,
                "token": access if BREAK == "show-token" else "",
            }
        self.redirect("/")


def main():
    if not FHIR_BASE:
        sys.exit("set FHIR_BASE to the payer's FHIR base URL")
    server = ThreadingHTTPServer((HOST, PORT), App)
    server.daemon_threads = True
    print(f"Example app on http://{HOST}:{PORT}/ (FHIR base {FHIR_BASE}, client {CLIENT_ID})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

// Studio Brain passkeys: WebAuthn sign-in, enrolment from an invite, adding a passkey to one's account.
// The server makes and checks every challenge; this file only moves bytes between it and the browser.
(function () {
  "use strict";

  function b64urlToBuffer(text) {
    const pad = "=".repeat((4 - (text.length % 4)) % 4);
    const raw = atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (let i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function status(text, tone) {
    const el = document.getElementById("passkey-status");
    if (!el) return;
    el.textContent = text;
    el.className = "passkey-status notice " + (tone || "info");
  }

  async function post(url, body, extraHeaders) {
    const headers = Object.assign({ "content-type": "application/json" }, extraHeaders || {});
    const response = await fetch(url, {
      method: "POST", headers: headers, body: JSON.stringify(body || {}), credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) {
      const err = new Error(data.message || ("refused (" + response.status + ")"));
      err.reasonCode = data.reasonCode;
      throw err;
    }
    return data;
  }

  function creationOptions(options) {
    options.challenge = b64urlToBuffer(options.challenge);
    options.user.id = b64urlToBuffer(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuffer(c.id); });
    return options;
  }

  function requestOptions(options) {
    options.challenge = b64urlToBuffer(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuffer(c.id); });
    return options;
  }

  function registrationJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id, rawId: bufferToB64url(cred.rawId), type: cred.type,
      response: {
        clientDataJSON: bufferToB64url(r.clientDataJSON),
        attestationObject: bufferToB64url(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
    };
  }

  function assertionJSON(cred) {
    const r = cred.response;
    return {
      id: cred.id, rawId: bufferToB64url(cred.rawId), type: cred.type,
      response: {
        clientDataJSON: bufferToB64url(r.clientDataJSON),
        authenticatorData: bufferToB64url(r.authenticatorData),
        signature: bufferToB64url(r.signature),
        userHandle: r.userHandle ? bufferToB64url(r.userHandle) : undefined,
      },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
    };
  }

  function unsupported() {
    if (window.PublicKeyCredential) return false;
    status("This browser cannot use passkeys here. Open the cockpit at its configured address " +
      "(http://localhost:…, not an IP address) in a current browser.", "bad");
    return true;
  }

  async function signIn() {
    if (unsupported()) return;
    status("Waiting for your passkey…", "info");
    try {
      const begun = await post("/login/passkey/begin");
      const cred = await navigator.credentials.get({ publicKey: requestOptions(begun.options) });
      const done = await post("/login/passkey/finish", { challengeId: begun.challengeId, credential: assertionJSON(cred) });
      status("Signed in as " + (done.name || "you") + ".", "ok");
      window.location.assign(done.redirect || "/");
    } catch (err) {
      status("Sign-in refused: " + err.message, "bad");
    }
  }

  async function register(beginUrl, beginBody, finishUrl, label, headers) {
    if (unsupported()) return;
    status("Follow your browser's prompt to create the passkey…", "info");
    try {
      const begun = await post(beginUrl, beginBody, headers);
      const cred = await navigator.credentials.create({ publicKey: creationOptions(begun.options) });
      const done = await post(finishUrl, { challengeId: begun.challengeId, credential: registrationJSON(cred), label: label }, headers);
      status("Passkey created.", "ok");
      window.location.assign(done.redirect || "/account");
    } catch (err) {
      status("Could not create the passkey: " + err.message, "bad");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const signin = document.getElementById("passkey-signin");
    if (signin) signin.addEventListener("click", signIn);

    const enrol = document.getElementById("enrol-form");
    if (enrol) enrol.addEventListener("submit", function (event) {
      event.preventDefault();
      const label = document.getElementById("passkey-label").value;
      register("/enrol/begin", { invite: enrol.dataset.invite }, "/enrol/finish", label);
    });

    const add = document.getElementById("add-passkey-form");
    if (add) add.addEventListener("submit", function (event) {
      event.preventDefault();
      const label = document.getElementById("passkey-label").value;
      register("/account/passkeys/begin", {}, "/account/passkeys/finish", label, { "x-csrf-token": add.dataset.csrf });
    });
  });
})();

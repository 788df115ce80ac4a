// SMART App Launch 2.x: the launch page (EHR launch with iss + launch, standalone launch with
// iss, or an open development server with fhirServiceUrl + patientId). The client id, scopes and
// redirect URI come from the service (api/config); fhirclient runs the authorization code flow
// as a public client with PKCE (S256 required).
"use strict";

(function () {
  const statusLine = document.getElementById("launch-status");
  const errorBox = document.getElementById("launch-error");

  function fail(message) {
    statusLine.textContent = "The app could not be launched.";
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

  function trimmed(url) {
    return url.replace(/\/+$/, "");
  }

  // An early, readable refusal; the service checks the same allow-list again (and the CSP would
  // block the browser from reaching any other server).
  function allowed(server, config) {
    let url;
    try {
      url = new URL(server);
    } catch (e) {
      return false;
    }
    if (!["http:", "https:"].includes(url.protocol) || url.username || url.password) {
      return false;
    }
    if (config.allowLoopback && LOOPBACK.has(url.hostname)) {
      return true;
    }
    const target = trimmed(url.href);
    return (config.fhirServers || []).some(function (prefix) {
      const base = trimmed(prefix);
      return target === base || target.startsWith(base + "/");
    });
  }

  // An EHR launch asks for `launch`, a standalone launch for `launch/patient` (the user picks the
  // patient at the authorization server).
  function scopeFor(scope, ehrLaunch) {
    const tokens = scope.split(/\s+/).filter(function (t) {
      return t && t !== "launch" && t !== "launch/patient";
    });
    tokens.unshift(ehrLaunch ? "launch" : "launch/patient");
    return tokens.join(" ");
  }

  async function start() {
    let config;
    try {
      const response = await fetch("api/config", { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      config = await response.json();
    } catch (e) {
      fail("The service's configuration could not be read (" + e.message + ").");
      return;
    }
    const params = new URLSearchParams(window.location.search);
    const iss = params.get("iss");
    const openServer = params.get("fhirServiceUrl");
    if (!iss && !openServer) {
      statusLine.textContent = "Not launched from an EHR.";
      document.getElementById("standalone").hidden = false;
      document.getElementById("open-server").hidden = !config.allowLoopback;
      return;
    }
    const server = iss || openServer;
    if (!allowed(server, config)) {
      fail(
        "This service does not work with the FHIR server " + server + ". Ask its operator to " +
        "add it to KETAMINE_CDS_ALLOWED_FHIR_SERVERS."
      );
      return;
    }
    if (!iss && !config.allowLoopback) {
      fail("An open FHIR server (no authorization) can be used in development mode only.");
      return;
    }
    statusLine.textContent = "Connecting to " + new URL(server).host + "…";
    try {
      await FHIR.oauth2.authorize({
        clientId: config.clientId,
        scope: scopeFor(config.scope, Boolean(params.get("launch"))),
        redirectUri: config.redirectUri,
        pkceMode: config.pkceMode,
        completeInTarget: true,
      });
    } catch (e) {
      fail(
        "The FHIR server's SMART configuration could not be read or the launch was refused (" +
        e.message + "). If its authorization server is on another origin, the service's operator " +
        "must add that origin to KETAMINE_CDS_APP_CONNECT_SRC."
      );
    }
  }

  start();
})();

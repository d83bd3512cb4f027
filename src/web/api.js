// Calls to the ghn service. Errors come back as { error: { status, code, message } }; they are
// rethrown as ApiError so the page can show the server's message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function parse(response) {
  if (response.ok) return response;
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(response.status, 'http', `${response.status} ${response.statusText}`);
  }
  const e = body.error ?? {};
  throw new ApiError(e.status ?? response.status, e.code ?? 'http', e.message ?? response.statusText);
}

function query(params) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  return q.size ? `?${q}` : '';
}

/** POST /v1/inspect?graph=1 with the file as the raw body. */
export async function inspectModel(file) {
  const r = await fetch(`/v1/inspect${query({ graph: 1, name: file.name })}`, {
    method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: file,
  });
  return (await parse(r)).json();
}

/** POST /v1/predict as a multipart form, asking for the JSON report and a download link. */
export async function predictModel(file, options) {
  const form = new FormData();
  form.append('model', file, file.name);
  const r = await fetch(`/v1/predict${query(options)}`, { method: 'POST', headers: { accept: 'application/json' }, body: form });
  return (await parse(r)).json();
}

export async function fetchBytes(url) {
  return new Uint8Array(await (await parse(await fetch(url))).arrayBuffer());
}

export async function listModels() {
  return (await parse(await fetch('/v1/models'))).json();
}

/** Test images: { count, shape, classes, normalization, labels, pixels (base64 uint8) }. */
export async function fetchSamples(count) {
  const body = await (await parse(await fetch(`/v1/samples?count=${count}`))).json();
  const raw = atob(body.pixels);
  const pixels = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) pixels[i] = raw.charCodeAt(i);
  return { ...body, pixels };
}

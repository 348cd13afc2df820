import { describe, expect, it } from 'vitest';
import { render } from '@testing-library/react';
import {
  collectOperations,
  filterOperations,
  groupByTag,
  InlineCode,
  schemaName,
  schemaProperties,
  type OpenApiDocument,
} from './ApiDocs';

const error = { content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } } };

/** A small document in the server's shape. */
const fixture: OpenApiDocument = {
  openapi: '3.1.0',
  info: { title: 'tollgate console API', version: '0.1.0' },
  tags: [
    { name: 'keys', description: 'API keys' },
    { name: 'counters', description: 'Token counters' },
    { name: 'empty', description: 'A tag no operation uses' },
  ],
  paths: {
    '/api/v1/keys': {
      get: {
        tags: ['keys'],
        summary: 'Lists the keys the caller can see, newest first, masked.',
        operationId: 'list_keys',
        parameters: [{ name: 'team_id', in: 'query', required: false, schema: { type: ['integer', 'null'], format: 'int64' } }],
        responses: {
          '200': { description: '', content: { 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/KeyView' } } } } },
        },
      },
      post: {
        tags: ['keys'],
        summary: 'Creates a key; the secret is in the answer once.',
        operationId: 'create_key',
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/KeyCreate' } } } },
        responses: { '201': { description: '', content: { 'application/json': { schema: { $ref: '#/components/schemas/KeyCreated' } } } }, '422': error },
      },
    },
    '/api/v1/keys/{id}': {
      delete: {
        tags: ['keys'],
        summary: 'Deletes a key (its usage stays).',
        operationId: 'delete_key',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', format: 'int64' } }],
        responses: { '204': { description: '' }, '404': error },
      },
    },
    '/api/v1/counters/parse': {
      post: {
        tags: ['counters'],
        summary: 'Parses a reading as the record dialog does.',
        operationId: 'parse',
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ParseRequest' } } } },
        responses: { '200': { description: '', content: { 'application/json': { schema: { $ref: '#/components/schemas/Parsed' } } } } },
      },
    },
    '/metrics': {
      get: {
        tags: ['health'],
        summary: 'Prometheus metrics.',
        operationId: 'metrics',
        security: [{}],
        responses: { '200': { description: 'Prometheus text format' } },
      },
    },
    '/api/usage-log': {
      post: {
        tags: ['ingest'],
        summary: 'Records an edge gateway report.',
        security: [{}, { ingest_signature: [] }, { ingest_token: [] }],
        responses: { '202': { description: '' } },
      },
    },
  },
  components: {
    schemas: {
      KeyView: { type: 'object', required: ['id'], properties: { id: { type: 'integer', format: 'int64' }, name: { type: 'string' } } },
      KeyCreated: {
        allOf: [
          { $ref: '#/components/schemas/KeyView' },
          { type: 'object', required: ['key'], properties: { key: { type: 'string', description: 'The secret `ntk_…`.' } } },
        ],
      },
      Figure: { oneOf: [{ type: 'integer', format: 'int64' }, { type: 'string' }] },
    },
  },
};

describe('collectOperations', () => {
  const ops = collectOperations(fixture);

  it('flattens every operation with its method, path and tag', () => {
    expect(ops.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toEqual([
      'GET /api/v1/keys',
      'POST /api/v1/keys',
      'DELETE /api/v1/keys/{id}',
      'POST /api/v1/counters/parse',
      'GET /metrics',
      'POST /api/usage-log',
    ]);
    expect(ops[0]!.tag).toBe('keys');
    expect(new Set(ops.map((o) => o.id)).size).toBe(ops.length);
  });

  it('names request and response schemas', () => {
    const list = ops.find((o) => o.operationId === 'list_keys')!;
    expect(list.responses).toEqual([{ status: '200', description: '', schema: 'KeyView[]', refs: ['KeyView'] }]);
    expect(list.parameters).toEqual([
      { name: 'team_id', in: 'query', required: false, type: 'integer (int64) | null', description: '' },
    ]);
    const create = ops.find((o) => o.operationId === 'create_key')!;
    expect(create.requestBody).toEqual({ schema: 'KeyCreate', refs: ['KeyCreate'], required: true });
    expect(create.responses.map((r) => [r.status, r.schema])).toEqual([
      ['201', 'KeyCreated'],
      ['422', 'ErrorBody'],
    ]);
    const del = ops.find((o) => o.operationId === 'delete_key')!;
    expect(del.responses[0]).toMatchObject({ status: '204', schema: null });
  });

  it('tells public and ingest operations from those needing a session or token', () => {
    expect(ops.find((o) => o.path === '/metrics')!.auth).toBe('public');
    expect(ops.find((o) => o.path === '/api/usage-log')!.auth).toBe('ingest');
    expect(ops.find((o) => o.operationId === 'list_keys')!.auth).toBe('default');
  });
});

describe('groupByTag', () => {
  it("keeps the document's tag order, adds undeclared tags alphabetically and drops empty ones", () => {
    const groups = groupByTag(collectOperations(fixture), fixture.tags);
    expect(groups.map((g) => [g.name, g.operations.length])).toEqual([
      ['keys', 3],
      ['counters', 1],
      ['health', 1],
      ['ingest', 1],
    ]);
    expect(groups[0]!.description).toBe('API keys');
  });
});

describe('filterOperations', () => {
  const ops = collectOperations(fixture);
  const paths = (q: string, m?: Parameters<typeof filterOperations>[2]) =>
    filterOperations(ops, q, m).map((o) => `${o.method} ${o.path}`);

  it('returns everything for an empty search', () => {
    expect(paths('  ')).toHaveLength(ops.length);
  });

  it('matches path, summary, operation id, parameters and schema names, case-insensitively', () => {
    expect(paths('/counters')).toEqual(['post /api/v1/counters/parse']);
    expect(paths('SECRET')).toEqual(['post /api/v1/keys']);
    expect(paths('delete_key')).toEqual(['delete /api/v1/keys/{id}']);
    expect(paths('team_id')).toEqual(['get /api/v1/keys']);
    expect(paths('keycreated')).toEqual(['post /api/v1/keys']);
    expect(paths('prometheus')).toEqual(['get /metrics']);
  });

  it('needs every word to match, and reads a method word as the method', () => {
    expect(paths('keys post')).toEqual(['post /api/v1/keys']);
    expect(paths('keys masked')).toEqual(['get /api/v1/keys']);
    expect(paths('keys nothing-like-this')).toEqual([]);
  });

  it('narrows by method', () => {
    expect(paths('', 'delete')).toEqual(['delete /api/v1/keys/{id}']);
    expect(paths('keys', 'get')).toEqual(['get /api/v1/keys']);
  });

  it('groups only what matched', () => {
    const groups = groupByTag(filterOperations(ops, 'key'), fixture.tags);
    expect(groups.map((g) => g.name)).toEqual(['keys']);
  });
});

describe('schemas', () => {
  it('names schemas briefly', () => {
    expect(schemaName({ $ref: '#/components/schemas/KeyView' })).toBe('KeyView');
    expect(schemaName({ type: 'array', items: { $ref: '#/components/schemas/KeyView' } })).toBe('KeyView[]');
    expect(schemaName({ type: ['string', 'null'] })).toBe('string | null');
    expect(schemaName(fixture.components!.schemas!.Figure)).toBe('integer (int64) | string');
    expect(schemaName({ type: 'string', enum: ['day', 'hour'] })).toBe('"day" | "hour"');
    expect(schemaName(undefined)).toBe('any');
  });

  it('merges allOf parts into one property list', () => {
    const props = schemaProperties(fixture, fixture.components!.schemas!.KeyCreated!);
    expect(props.map((p) => [p.name, p.required])).toEqual([
      ['id', true],
      ['name', false],
      ['key', true],
    ]);
  });

  it('shows `backticks` as code', () => {
    const { container } = render(<InlineCode text="The secret `ntk_…`; shown once." />);
    expect(container.querySelector('code')?.textContent).toBe('ntk_…');
    expect(container.textContent).toBe('The secret ntk_…; shown once.');
  });
});

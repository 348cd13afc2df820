import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from '@testing-library/react';
import { TargetRow } from './index';
import {
  circuitTone,
  modelBody,
  parsePool,
  poolText,
  recentTotals,
  targetCreate,
  targetFormOf,
  targetPatch,
  validateTarget,
  type TargetHealth,
  type TargetView,
} from './model';

afterEach(cleanup);

const target: TargetView = {
  id: 3,
  name: 'azure-eu',
  provider: 'azure',
  base_url: 'https://myres.openai.azure.com',
  has_credential: true,
  credential_header: { name: 'api-key', format: '{key}' },
  query: { 'api-version': '2024-10-21' },
  deployment: 'gpt4o-prod',
  weight: 2,
  rpm: 500,
  created_at: 1,
  updated_at: 1,
};

const health: TargetHealth = {
  target_id: 3,
  name: 'azure-eu',
  circuit: 'open',
  open_since: 1_000,
  reopens_at: 31_000,
  consecutive_failures: 3,
  in_flight: 2,
  current_minute_attempts: 7,
  rpm: 500,
  minutes: [
    { minute: 0, attempts: 4, errors: 1 },
    { minute: 60_000, attempts: 7, errors: 2 },
  ],
  recent_errors: [{ at: 2_000, status: 503, reason: 'upstream server error' }],
};

describe('model forms', () => {
  test('a pool reads target=upstream pairs and writes them back', () => {
    const pool = parsePool('azure-eu=gpt4o-prod, openai-1  openai-1');
    expect(pool).toEqual([{ target: 'azure-eu', upstream_model: 'gpt4o-prod' }, { target: 'openai-1' }]);
    expect(poolText(pool)).toBe('azure-eu=gpt4o-prod, openai-1');
    expect(modelBody({ name: 'x', pool: 'a', aliases: 'fast, quick', fallbacks: '', strategy: 'least_busy' })).toEqual({
      pool: [{ target: 'a' }],
      aliases: ['fast', 'quick'],
      fallbacks: [],
      strategy: 'least_busy',
    });
  });

  test('a target patch sends only what changed; a blank credential keeps the stored one', () => {
    const form = targetFormOf(target);
    expect(form.credential).toBe('');
    expect(targetPatch(target, form)).toEqual({});
    expect(targetPatch(target, { ...form, rpm: '', credential: 'new-secret' })).toEqual({
      rpm: null,
      credential: 'new-secret',
    });
    expect(targetPatch(target, { ...form, credential_header: 'X-Token', credential_format: 'Token {key}' })).toEqual({
      credential_header: 'X-Token',
      credential_format: 'Token {key}',
    });
  });

  test('a new target is checked before it is sent', () => {
    const blank = targetFormOf(null);
    expect(validateTarget({ ...blank, name: 'bad name', weight: '0' }, true)).toEqual({
      name: 'bad_name',
      weight: 'bad_weight',
    });
    expect(validateTarget({ ...blank, name: 'v', provider: 'openai_compatible' }, true).base_url).toBe(
      'base_url_required',
    );
    expect(validateTarget({ ...blank, name: 'x', credential_format: 'Bearer' }, true).credential_format).toBe(
      'bad_format',
    );
    expect(targetCreate({ ...blank, name: 'o', credential: 'sk' })).toEqual({
      name: 'o',
      provider: 'openai',
      credential: 'sk',
      weight: 1,
    });
  });
});

describe('target health', () => {
  test('totals and tones', () => {
    expect(recentTotals(health)).toEqual({ attempts: 11, errors: 3 });
    expect(circuitTone('closed')).toBe('success');
    expect(circuitTone('half_open')).toBe('warning');
    expect(circuitTone('open')).toBe('danger');
  });

  test('a row shows the credential header, never a credential, and the health', () => {
    render(
      <table>
        <tbody>
          <TargetRow target={target} health={health} onEdit={() => {}} onDelete={() => {}} />
        </tbody>
      </table>,
    );
    const row = document.querySelector('tr[data-target="azure-eu"]')!;
    expect(row.textContent).toContain('api-key: {key}');
    expect(row.querySelector('.target-circuit .badge')!.className).toContain('danger');
    expect(row.querySelector('.target-in-flight')!.textContent).toBe('2');
    expect(row.querySelector('.target-rate')!.textContent).toBe('7 / 500');
    expect(row.querySelector('.target-recent')!.textContent).toContain('11');
    expect(row.querySelector('.target-errors')!.textContent).toContain('503');
    expect(row.querySelector('.target-errors')!.textContent).toContain('upstream server error');
  });
});

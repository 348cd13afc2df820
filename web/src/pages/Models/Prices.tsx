// Prices in force (built-in, config, console) with the built-in table's date, read by every
// signed-in user; instance admins set a console price for a model name or prefix, or remove one.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../../api/client';
import { usePermissions } from '../../auth';
import { ConfirmAction, Dialog, Empty, ErrorAlert, ErrorState, Field, FormButtons, Loading, useToast } from '../../components/ui';
import { ns } from './messages';

type PriceForm = { model: string; input: string; output: string; cached_input: string; reasoning: string };
type PriceRow = { model: string };

/** A price field: a number from 0 to 100000, or blank where the field is optional. */
export function priceError(value: string, optional: boolean): string | null {
  if (value.trim() === '') return optional ? null : 'price_required';
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 && n <= 100_000 ? null : 'price_invalid';
}

function optional(value: string): number | null {
  return value.trim() === '' ? null : Number(value);
}

function usd(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : `$${value}`;
}

export function PricesSection() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const prices = useQuery({ queryKey: ['prices'], queryFn: () => unwrap(client.GET('/api/v1/prices')) });
  const [editing, setEditing] = useState(false);
  const [removing, setRemoving] = useState<PriceRow | null>(null);
  const queries = useQueryClient();
  const toast = useToast();
  const rows = [...(prices.data?.prices ?? [])].sort((a, b) => a.model.localeCompare(b.model));
  return (
    <section aria-labelledby="prices-heading">
      <div className="section-head">
        <h2 id="prices-heading">{t('prices')}</h2>
        {can.isAdmin && (
          <button type="button" onClick={() => setEditing(true)}>
            {t('set_price')}
          </button>
        )}
      </div>
      {prices.data && <p className="muted">{t('prices_note', { date: prices.data.as_of })}</p>}
      {prices.isPending ? (
        <Loading />
      ) : prices.isError ? (
        <ErrorState error={prices.error} onRetry={() => void prices.refetch()} />
      ) : rows.length === 0 ? (
        <Empty>{t('prices_empty')}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="prices-table">
            <thead>
              <tr>
                <th scope="col">{t('col_model')}</th>
                <th scope="col">{t('col_provider')}</th>
                <th scope="col">{t('col_input')}</th>
                <th scope="col">{t('col_output')}</th>
                <th scope="col">{t('col_cached_input')}</th>
                <th scope="col">{t('col_reasoning')}</th>
                <th scope="col">{t('col_source')}</th>
                {can.isAdmin && (
                  <th scope="col">
                    <span className="sr-only">{t('col_actions')}</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {rows.map((p) => (
                <tr key={p.model} data-price={p.model}>
                  <td>
                    <code>{p.model}</code>
                  </td>
                  <td>{p.provider ?? '—'}</td>
                  <td>{usd(p.input)}</td>
                  <td>{usd(p.output)}</td>
                  <td>{usd(p.cached_input)}</td>
                  <td>{usd(p.reasoning)}</td>
                  <td>{t(`source_${p.source}`)}</td>
                  {can.isAdmin && (
                    <td>
                      {p.source === 'console' && (
                        <button
                          type="button"
                          className="small danger"
                          aria-label={t('remove_price_title', { model: p.model })}
                          onClick={() => setRemoving({ model: p.model })}
                        >
                          {t('delete')}
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && <PriceDialog onClose={() => setEditing(false)} />}
      <ConfirmAction
        target={removing}
        title={t('remove_price_title', { model: removing?.model ?? '' })}
        message={t('remove_price_message')}
        confirmLabel={t('delete')}
        run={(x) => unwrap(client.DELETE('/api/v1/prices/{model}', { params: { path: { model: x.model } } }))}
        onDone={(x) => {
          void queries.invalidateQueries({ queryKey: ['prices'] });
          toast(t('price_removed', { model: x.model }));
        }}
        onClose={() => setRemoving(null)}
      />
    </section>
  );
}

function PriceDialog({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<PriceForm>({ model: '', input: '', output: '', cached_input: '', reasoning: '' });
  const [checked, setChecked] = useState(false);
  const set = <K extends keyof PriceForm>(k: K, v: string) => setForm((f) => ({ ...f, [k]: v }));
  const save = useMutation({
    mutationFn: (f: PriceForm) =>
      unwrap(
        client.PUT('/api/v1/prices/{model}', {
          params: { path: { model: f.model.trim() } },
          body: {
            input: Number(f.input),
            output: Number(f.output),
            cached_input: optional(f.cached_input),
            reasoning: optional(f.reasoning),
          },
        }),
      ),
    onSuccess: (saved) => {
      void queries.invalidateQueries({ queryKey: ['prices'] });
      toast(t('price_saved', { model: saved.model }));
      onClose();
    },
  });
  const local: Partial<Record<keyof PriceForm, string | null>> = checked
    ? {
        model: form.model.trim() === '' ? 'price_model_required' : null,
        input: priceError(form.input, false),
        output: priceError(form.output, false),
        cached_input: priceError(form.cached_input, true),
        reasoning: priceError(form.reasoning, true),
      }
    : {};
  const serverField = save.error instanceof ApiError ? (save.error.field ?? null) : null;
  const errorAt = (k: keyof PriceForm) => {
    const code = local[k];
    if (code) return t(code);
    return serverField === k ? (save.error as ApiError).message : null;
  };
  function submit(e: FormEvent) {
    e.preventDefault();
    setChecked(true);
    const bad =
      form.model.trim() === '' ||
      priceError(form.input, false) ||
      priceError(form.output, false) ||
      priceError(form.cached_input, true) ||
      priceError(form.reasoning, true);
    if (bad) return;
    save.mutate(form);
  }
  const number = (k: keyof PriceForm, label: string, help?: string) => (
    <Field label={label} help={help} error={errorAt(k)}>
      <input value={form[k]} inputMode="decimal" spellCheck={false} onChange={(e) => set(k, e.target.value)} />
    </Field>
  );
  return (
    <Dialog
      open
      onClose={onClose}
      title={t('set_price')}
      footer={<FormButtons onCancel={onClose} label={t('common:save')} busy={save.isPending} form="price-form" />}
    >
      <form id="price-form" onSubmit={submit} noValidate>
        {!serverField && <ErrorAlert error={save.error} />}
        <Field label={t('col_model')} help={t('price_model_help')} error={errorAt('model')}>
          <input value={form.model} autoFocus spellCheck={false} onChange={(e) => set('model', e.target.value)} />
        </Field>
        {number('input', t('col_input'))}
        {number('output', t('col_output'))}
        {number('cached_input', t('col_cached_input'), t('price_optional_help'))}
        {number('reasoning', t('col_reasoning'), t('price_optional_help'))}
      </form>
    </Dialog>
  );
}

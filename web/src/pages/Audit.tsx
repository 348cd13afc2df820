// Placeholder: this page is being built.
export default function AuditPage() {
  return <h1>Audit</h1>;
}

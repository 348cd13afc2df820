// Placeholder: this page is being built.
export default function LogsPage() {
  return <h1>Logs</h1>;
}

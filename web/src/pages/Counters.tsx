// Placeholder: this page is being built.
export default function CountersPage() {
  return <h1>Counters</h1>;
}

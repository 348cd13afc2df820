// Placeholder: this page is being built.
export default function KeysPage() {
  return <h1>Keys</h1>;
}

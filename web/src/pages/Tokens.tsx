// Placeholder: this page is being built.
export default function TokensPage() {
  return <h1>Tokens</h1>;
}

// Placeholder: this page is being built.
export default function TeamsPage() {
  return <h1>Teams</h1>;
}

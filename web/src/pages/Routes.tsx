// Placeholder: this page is being built.
export default function RoutesPage() {
  return <h1>Routes</h1>;
}

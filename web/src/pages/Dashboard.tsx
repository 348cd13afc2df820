// Placeholder: this page is being built.
export default function DashboardPage() {
  return <h1>Dashboard</h1>;
}

// Placeholder: this page is being built.
export default function SettingsPage() {
  return <h1>Settings</h1>;
}

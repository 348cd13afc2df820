// Placeholder: this page is being built.
export default function ApiDocsPage() {
  return <h1>ApiDocs</h1>;
}

// Placeholder: this page is being built.
export default function AcceptInvitationPage() {
  return <h1>AcceptInvitation</h1>;
}

/** A page that says what went wrong and what to do next. */
import { Page, type PageContext } from '../layout.js';

export function ErrorPage(props: { ctx: PageContext; title: string; message: string; signIn?: boolean }) {
  return (
    <Page title={props.title} ctx={props.ctx}>
      <h1>{props.title}</h1>
      <p class="error" role="alert">
        {props.message}
      </p>
      <p>{props.signIn ? <a href="/signin">Sign in</a> : <a href="/storage">Back to Storage</a>}</p>
    </Page>
  );
}

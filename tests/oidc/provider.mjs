// A real OpenID Connect provider on loopback for scimd's sign-in tests: oauth2-mock-server
// (discovery, JWKS, RS256-signed ID tokens, PKCE S256 checked at the token endpoint, the nonce
// echoed into the ID token), plus what a test needs on top:
//
// - Who signs in: the test adds `test_user=<JSON claims>` to the authorization URL, as a person
//   would pick an account on the provider's page; the claims (sub, email, email_verified, and
//   for Microsoft tid, iss, xms_edov) go into the ID token issued for that code.
// - Codes work once, as at a real provider (RFC 6749 §4.1.2): a replayed code gets invalid_grant.
// - Microsoft's multi-tenant discovery: /ms/common/v2.0/.well-known/openid-configuration names
//   the issuer `…/ms/{tenantid}/v2.0`, as login.microsoftonline.com does.
//
// Prints "listening http://127.0.0.1:PORT" once ready; exits when stdin closes.
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
const users = new Map();
const used = new Set();

server.service.on('beforeAuthorizeRedirect', (redirect, req) => {
  const code = redirect.url.searchParams.get('code');
  const raw = req.query.test_user;
  if (code && typeof raw === 'string') {
    users.set(code, JSON.parse(raw));
  }
});

server.service.on('beforeTokenSigning', (token, req) => {
  const claims = users.get(req.body && req.body.code);
  if (claims) {
    Object.assign(token.payload, claims);
  }
});

server.service.on('beforeResponse', (response, req) => {
  if (req.body.grant_type !== 'authorization_code') {
    return;
  }
  const code = req.body.code;
  if (!users.has(code) || used.has(code)) {
    response.statusCode = 400;
    response.body = { error: 'invalid_grant', error_description: 'unknown or used code' };
    return;
  }
  used.add(code);
});

const handler = server.service.requestHandler;
const listener = http.createServer((req, res) => {
  if (req.url.startsWith('/ms/common/v2.0/.well-known/openid-configuration')) {
    const base = server.issuer.url;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      issuer: `${base}/ms/{tenantid}/v2.0`,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/jwks`,
      userinfo_endpoint: `${base}/userinfo`,
      response_types_supported: ['code'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
    }));
    return;
  }
  handler(req, res);
});
listener.listen(0, '127.0.0.1', () => {
  server.issuer.url = `http://127.0.0.1:${listener.address().port}`;
  console.log(`listening ${server.issuer.url}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

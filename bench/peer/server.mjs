// Starts node oidc-provider on 127.0.0.1 with one client_credentials client and token
// introspection (RFC 7662), for the peer comparison in bench/run.sh.
//
// Usage: node server.mjs PORT CLIENT_ID CLIENT_SECRET
// The provider keeps its tokens in its built-in in-memory adapter and issues opaque access
// tokens, because a client_credentials request without a resource indicator gets an opaque one.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
if (!port || !clientId || !clientSecret) {
  console.error('usage: node server.mjs PORT CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  scopes: ['read'],
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.error(`oidc-provider listening on ${issuer}`);
});

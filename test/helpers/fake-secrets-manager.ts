import { listen } from './servers.ts';

/**
 * A Secrets Manager endpoint on 127.0.0.1 that answers GetSecretValue (AWS JSON 1.1 protocol) from a map, for running
 * the bundled function as Lambda would, pointed at it through AWS_ENDPOINT_URL_SECRETS_MANAGER.
 */
export async function startFakeSecretsManager(secrets: Record<string, string>) {
  const requests: Array<{ target: string; secretId: string }> = [];
  const server = await listen((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const secretId = String((JSON.parse(body || '{}') as { SecretId?: string }).SecretId ?? '');
      requests.push({ target, secretId });
      const value = secrets[secretId];
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target !== 'secretsmanager.GetSecretValue' || value === undefined) {
        res.writeHead(400).end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'not found' }));
        return;
      }
      res.end(JSON.stringify({ ARN: secretId, Name: secretId, SecretString: value, VersionId: 'v1', CreatedDate: 1.7e9 }));
    });
  });
  return { url: server.url, requests, close: server.close };
}

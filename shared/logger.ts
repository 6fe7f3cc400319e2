import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The functions' one logger: structured JSON with the Lambda and API request ids. The service name and level come
 * from POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL. Nothing logs a secret, a signature or a signed payload.
 */
export const logger = new Logger();

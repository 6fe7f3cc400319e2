import { App } from 'aws-cdk-lib';
import { buildBridgeApp } from './bridge-app.ts';

const app = new App();
buildBridgeApp(app);
app.synth();

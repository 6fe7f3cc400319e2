import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBridgeApp } from '../../infra/bridge-app.ts';
import { parseStackConfig } from '../../infra/config.ts';
import { InvoiceStack } from '../../infra/invoice-stack.ts';
import { JOB_FUNCTIONS } from '../../shared/jobs.ts';

/**
 * Fixed egress IPs (config `egress`): with `staticIps` the functions run in a VPC whose NAT gateways, one per zone
 * with its Elastic IP, carry everything they send to the internet; without it there is no VPC at all.
 */

const synth = (id: string, config: unknown) =>
  Template.fromStack(new InvoiceStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), id, { config: parseStackConfig(config) }));

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[] };
type Resources = Record<string, Resource>;
const resourcesOf = (template: Template, type: string) => template.findResources(type) as Resources;
const ofType = (template: Template, type: string) => Object.values(resourcesOf(template, type));

const functionsOf = (template: Template): Record<string, Resource> =>
  Object.fromEntries(
    ofType(template, 'AWS::Lambda::Function')
      .filter((fn) => fn.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME)
      .map((fn) => [fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME.replace('einvoice-bridge-', ''), fn]),
  );

/** Every statement of the policies attached to a function's role. */
const statementsOf = (template: Template, name: string) => {
  const roleRef = functionsOf(template)[name]!.Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleRef }] } })).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement,
  );
};

/** The subnets with a route to the internet through a NAT gateway, by logical id, with that gateway. */
const natRoutedSubnets = (template: Template) => {
  const routes = ofType(template, 'AWS::EC2::Route').filter((route) => route.Properties.NatGatewayId);
  const associations = ofType(template, 'AWS::EC2::SubnetRouteTableAssociation');
  return Object.fromEntries(
    routes.map((route) => {
      const association = associations.find((a) => a.Properties.RouteTableId.Ref === route.Properties.RouteTableId.Ref)!;
      return [association.Properties.SubnetId.Ref as string, route.Properties.NatGatewayId.Ref as string];
    }),
  );
};

describe('without fixed egress IPs (the default)', () => {
  let template: Template;
  beforeAll(() => {
    template = synth('NoEgress', {});
  });

  it('creates no VPC resource at all, and the functions run outside any VPC', () => {
    const ec2 = Object.values(template.toJSON().Resources as Resources).filter((r) => r.Type.startsWith('AWS::EC2::') || r.Type.startsWith('Custom::Vpc'));
    expect(ec2).toEqual([]);
    for (const fn of Object.values(functionsOf(template))) expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(Object.keys(template.findOutputs('*')).filter((name) => name.startsWith('Egress'))).toEqual([]);
  });

  it('grants the functions no network-interface permission', () => {
    for (const name of JOB_FUNCTIONS) expect(JSON.stringify(statementsOf(template, name))).not.toContain('ec2:');
  });
});

describe.each([1, 2] as const)('with fixed egress IPs in %i zone(s)', (zones) => {
  let template: Template;
  let without: Template;
  beforeAll(() => {
    template = synth('Bridge', { egress: { staticIps: true, zones } });
    without = synth('Bridge', {});
  });

  it('has one VPC, and one NAT gateway per zone with an Elastic IP of its own, each in a public subnet of its zone', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    const eips = resourcesOf(template, 'AWS::EC2::EIP');
    expect(Object.values(eips).map((eip) => eip.Properties.Domain)).toEqual(Array(zones).fill('vpc'));
    const nats = ofType(template, 'AWS::EC2::NatGateway');
    expect(nats).toHaveLength(zones);
    expect(new Set(nats.map((nat) => nat.Properties.AllocationId['Fn::GetAtt'][0]))).toEqual(new Set(Object.keys(eips)));
    const subnets = resourcesOf(template, 'AWS::EC2::Subnet');
    const natZones = nats.map((nat) => {
      const subnet = subnets[nat.Properties.SubnetId.Ref]!;
      expect(subnet.Properties.Tags).toContainEqual({ Key: 'aws-cdk:subnet-type', Value: 'Public' });
      return JSON.stringify(subnet.Properties.AvailabilityZone);
    });
    expect(new Set(natZones).size).toBe(zones);
  });

  it('names the zones with Fn::GetAZs, so that the synth needs no account lookup', () => {
    const zonesUsed = ofType(template, 'AWS::EC2::Subnet').map((subnet) => subnet.Properties.AvailabilityZone);
    expect(new Set(zonesUsed.map((az) => JSON.stringify(az)))).toEqual(
      new Set(Array.from({ length: zones }, (_, index) => JSON.stringify({ 'Fn::Select': [index, { 'Fn::GetAZs': '' }] }))),
    );
  });

  it('gives every function the private subnets, whose only way out is their zone\'s NAT gateway, and the one security group', () => {
    const routed = natRoutedSubnets(template);
    const securityGroups = Object.keys(template.findResources('AWS::EC2::SecurityGroup'));
    expect(securityGroups).toHaveLength(1);
    for (const [name, fn] of Object.entries(functionsOf(template))) {
      const subnetIds = fn.Properties.VpcConfig.SubnetIds.map((subnet: { Ref: string }) => subnet.Ref);
      expect(subnetIds, name).toHaveLength(zones);
      expect(subnetIds.map((id: string) => routed[id]).every(Boolean), name).toBe(true);
      expect(new Set(subnetIds.map((id: string) => routed[id])).size, name).toBe(zones);
      expect(fn.Properties.VpcConfig.SecurityGroupIds, name).toEqual([{ 'Fn::GetAtt': [securityGroups[0], 'GroupId'] }]);
      // Lambda attaches the function only once its role may create the interfaces and its routes exist
      expect(fn.DependsOn!.filter((id) => id.includes('DefaultRoute')), name).toHaveLength(zones);
    }
    expect(Object.keys(functionsOf(template)).sort()).toEqual([...JOB_FUNCTIONS].sort());
  });

  it('reaches S3 and DynamoDB through gateway endpoints on the functions\' route tables, not through NAT', () => {
    const endpoints = ofType(template, 'AWS::EC2::VPCEndpoint');
    expect(endpoints.map((endpoint) => endpoint.Properties.VpcEndpointType)).toEqual(['Gateway', 'Gateway']);
    expect(endpoints.map((endpoint) => endpoint.Properties.ServiceName)).toEqual([
      { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.s3']] },
      { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.dynamodb']] },
    ]);
    const functionRouteTables = ofType(template, 'AWS::EC2::SubnetRouteTableAssociation')
      .filter((association) => association.Properties.SubnetId.Ref in natRoutedSubnets(template))
      .map((association) => association.Properties.RouteTableId);
    for (const endpoint of endpoints) expect(endpoint.Properties.RouteTableIds).toEqual(expect.arrayContaining(functionRouteTables));
  });

  it('outputs each Elastic IP, to give to the providers', () => {
    const outputs = template.findOutputs('*');
    const eipIds = Object.keys(resourcesOf(template, 'AWS::EC2::EIP'));
    const egress = Object.entries(outputs).filter(([name]) => name.startsWith('EgressIp'));
    expect(egress.map(([name]) => name)).toEqual(Array.from({ length: zones }, (_, index) => `EgressIp${index + 1}`));
    expect(new Set(egress.map(([, output]) => output.Value['Fn::GetAtt'][0]))).toEqual(new Set(eipIds));
    for (const [, output] of egress) {
      expect(output.Value['Fn::GetAtt'][1]).toBe('PublicIp');
      expect(output.Description).toContain('whitelist');
    }
  });

  it('grants each function only the network-interface permissions Lambda needs, on its own subnets and group where EC2 allows', () => {
    const securityGroup = Object.keys(template.findResources('AWS::EC2::SecurityGroup'))[0]!;
    const ec2Arn = (resource: unknown[]) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ...resource]],
    });
    for (const [name, fn] of Object.entries(functionsOf(template))) {
      const subnets = fn.Properties.VpcConfig.SubnetIds.map((subnet: unknown) => ec2Arn([':subnet/', subnet]));
      expect(statementsOf(template, name).filter((s) => JSON.stringify(s.Action).includes('ec2:')), name).toEqual([
        { Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' },
        {
          Effect: 'Allow',
          Action: 'ec2:CreateNetworkInterface',
          Resource: [ec2Arn([':network-interface/*']), ...subnets, ec2Arn([':security-group/', { 'Fn::GetAtt': [securityGroup, 'GroupId'] }])],
        },
        {
          Effect: 'Allow',
          Action: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
          Resource: ec2Arn([':network-interface/*']),
        },
      ]);
    }
  });

  it('lets no security group admit inbound traffic, the VPC\'s default one included, and lets the functions out on 443 only', () => {
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    for (const group of ofType(template, 'AWS::EC2::SecurityGroup')) {
      expect(group.Properties.SecurityGroupIngress).toBeUndefined();
      expect(group.Properties.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 })]);
    }
    // The default group admits its own members until its rules are removed, which this custom resource does
    const [restrict] = ofType(template, 'Custom::VpcRestrictDefaultSG');
    expect(restrict!.Properties.DefaultSecurityGroupId).toEqual({ 'Fn::GetAtt': [Object.keys(resourcesOf(template, 'AWS::EC2::VPC'))[0], 'DefaultSecurityGroup'] });
  });

  it('logs the VPC\'s traffic, kept as long as the functions\' logs', () => {
    const [flowLog] = ofType(template, 'AWS::EC2::FlowLog');
    expect(flowLog!.Properties).toMatchObject({ ResourceType: 'VPC', TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    expect(template.toJSON().Resources[flowLog!.Properties.LogGroupName.Ref]).toMatchObject({ Properties: { RetentionInDays: 180 }, DeletionPolicy: 'Retain' });
  });

  it('leaves each function\'s code, memory, timeout, environment and routes as they are without it', () => {
    const kept = (t: Template) =>
      Object.fromEntries(
        Object.entries(functionsOf(t)).map(([name, fn]) => {
          const { VpcConfig: _vpc, ...rest } = fn.Properties;
          return [name, rest];
        }),
      );
    expect(kept(template)).toEqual(kept(without));
    expect(ofType(template, 'AWS::ApiGatewayV2::Route')).toEqual(ofType(without, 'AWS::ApiGatewayV2::Route'));
  });
});

describe('a second zone added later', () => {
  it('keeps the first zone\'s Elastic IP, NAT gateway and subnets as they are: the address given to the providers stays', () => {
    const one = synth('Bridge', { egress: { staticIps: true, zones: 1 } }).toJSON().Resources as Resources;
    const two = synth('Bridge', { egress: { staticIps: true, zones: 2 } }).toJSON().Resources as Resources;
    const firstZone = (resources: Resources) =>
      Object.fromEntries(
        Object.entries(resources).filter(
          ([id, resource]) =>
            ['AWS::EC2::EIP', 'AWS::EC2::NatGateway', 'AWS::EC2::Subnet'].includes(resource.Type) && (id.includes('Subnet1') || id.includes('Ip1')),
        ),
      );
    expect(Object.keys(firstZone(one))).toHaveLength(4);
    expect(firstZone(two)).toEqual(firstZone(one));
  });
});

describe('the functions\' way out with mirrorAllowedHosts', () => {
  it('opens the hosts\' ports as well (80 for a host without one, which may be fetched over http)', () => {
    const template = synth('Mirror', { egress: { staticIps: true }, mirrorAllowedHosts: ['files.example.com', 'cdn.example.com:8443', 'a.example.com:443'] });
    const [group] = ofType(template, 'AWS::EC2::SecurityGroup');
    expect(group!.Properties.SecurityGroupEgress.map((rule: { FromPort: number }) => rule.FromPort)).toEqual([443, 80, 8443]);
    expect(group!.Properties.SecurityGroupIngress).toBeUndefined();
  });
});

describe('the egress configuration', () => {
  const synthApp = (config: unknown) => () => buildBridgeApp(new App({ context: { 'aws:cdk:bundling-stacks': [], config } }));

  it('is refused at synth when it is not one the stack can build, naming the field', () => {
    expect(synthApp({ egress: { staticIps: true, zones: 3 } })).toThrow('config.egress.zones: must be 1 or 2');
    expect(synthApp({ egress: { staticIps: 'yes' } })).toThrow('config.egress.staticIps: must be true or false');
    expect(synthApp({ egress: { staticIps: true, nat: 'instance' } })).toThrow('config.egress: Unrecognized key: "nat"');
  });

  it('needs no account or context lookup, even with an account and region in the environment', () => {
    // Act
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], config: { egress: { staticIps: true } } } });
    new InvoiceStack(app, 'WithAccount', {
      env: { account: '123456789012', region: 'cn-northwest-1' },
      config: parseStackConfig({ egress: { staticIps: true } }),
    });
    const assembly = app.synth();
    // Assess: nothing the CLI would have to look up with credentials
    expect(assembly.manifest.missing).toBeUndefined();
  });
});

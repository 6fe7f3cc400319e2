import { Aws, CfnOutput, RemovalPolicy } from 'aws-cdk-lib';
import {
  CfnEIP,
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  IpAddresses,
  NatProvider,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
  type ISubnet,
} from 'aws-cdk-lib/aws-ec2';
import { Effect, PolicyStatement, type IRole } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** Where a function runs when the stack gives it fixed egress IPs (infra/bridge-function.ts). */
export interface FunctionNetwork {
  vpc: Vpc;
  subnets: ISubnet[];
  securityGroup: SecurityGroup;
}

export interface EgressNetworkProps {
  /** Zones, each with a public subnet, a NAT gateway and its Elastic IP, and a private subnet for the functions. */
  zones: 1 | 2;
  /** Ports besides 443 the functions may connect to: those of `mirrorAllowedHosts` (http, or an explicit port). */
  extraPorts: number[];
  logRetention: RetentionDays;
}

/**
 * Fixed egress IPs for the providers' IP whitelists. The functions run in private subnets; everything they send to
 * the internet (the providers' APIs and Jumdata's file links, Secrets Manager) leaves through the NAT gateway of
 * their zone, from its Elastic IP. S3 and DynamoDB are reached through gateway endpoints, never through NAT. No
 * security group admits inbound traffic: the functions are invoked by Lambda, not over the network.
 */
export class EgressNetwork extends Construct {
  readonly network: FunctionNetwork;
  /** One per zone, in zone order: the addresses to give the providers. */
  readonly elasticIps: CfnEIP[];

  constructor(scope: Construct, id: string, props: EgressNetworkProps) {
    super(scope, id);
    // Allocated by the stack (not by CDK's NAT provider) so that each address is a named resource and an output.
    this.elasticIps = Array.from({ length: props.zones }, (_, index) => {
      const eip = new CfnEIP(this, `Ip${index + 1}`, { domain: 'vpc', tags: [{ key: 'Name', value: `einvoice-bridge egress ${index + 1}` }] });
      new CfnOutput(scope, `EgressIp${index + 1}`, {
        value: eip.attrPublicIp,
        description: `Fixed egress IP ${index + 1} of ${props.zones}: add every one to each provider's IP whitelist (Jumdata 607 ip不在白名单)`,
      });
      return eip;
    });
    const vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr('10.80.0.0/16'),
      maxAzs: props.zones,
      natGateways: props.zones,
      natGatewayProvider: NatProvider.gateway({ eipAllocationIds: this.elasticIps.map((eip) => eip.attrAllocationId) }),
      // Fixed sizes: the first zone's subnets keep their addresses when a second zone is added (no replacement).
      subnetConfiguration: [
        // Only the NAT gateways live here; nothing gets a public address by default.
        { name: 'Nat', subnetType: SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'Functions', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      gatewayEndpoints: {
        S3: { service: GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: GatewayVpcEndpointAwsService.DYNAMODB },
      },
      // The VPC's default security group loses its rules (it admits traffic from its members otherwise).
      restrictDefaultSecurityGroup: true,
    });
    // Which address talked to which host and when, rejected connections included: the network's audit trail.
    const flowLogs = new LogGroup(this, 'FlowLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.RETAIN });
    vpc.addFlowLog('FlowLog', { destination: FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: FlowLogTrafficType.ALL });

    const securityGroup = new SecurityGroup(this, 'FunctionsSecurityGroup', {
      vpc,
      description: 'einvoice-bridge functions: outbound only (HTTPS; the ports of mirrorAllowedHosts), no inbound',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS: the providers, file links, AWS APIs');
    for (const port of props.extraPorts) securityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(port), `mirrorAllowedHosts port ${port}`);
    this.network = { vpc, subnets: vpc.selectSubnets({ subnetGroupName: 'Functions' }).subnets, securityGroup };
  }
}

/**
 * The network-interface permissions Lambda uses, with the function's own role, to attach it to the VPC (CDK adds
 * them only to roles it creates). Describe* take no resource; the interfaces Lambda creates have no ID before they
 * exist, so they are named by account and region; creating one is limited to the functions' subnets and group.
 */
export function grantNetworkInterfaces(role: IRole, network: FunctionNetwork): void {
  const ec2Arn = (resource: string) => `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
  const interfaces = ec2Arn('network-interface/*');
  const statements = [
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      resources: ['*'],
    }),
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['ec2:CreateNetworkInterface'],
      resources: [
        interfaces,
        ...network.subnets.map((subnet) => ec2Arn(`subnet/${subnet.subnetId}`)),
        ec2Arn(`security-group/${network.securityGroup.securityGroupId}`),
      ],
    }),
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: [interfaces],
    }),
  ];
  for (const statement of statements) role.addToPrincipalPolicy(statement);
}

/** The nag finding the interfaces' wildcard raises, with its reason, for the role that holds the statements. */
export const NETWORK_INTERFACE_WILDCARD = {
  id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
  reason: 'Lambda names the network interfaces it creates for the function in the VPC; their IDs do not exist before.',
};

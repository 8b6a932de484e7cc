/**
 * `loom chaincode package <dir> --label <label> [--type node|ccaas] [-o <file>]` and
 * `loom chaincode calculatepackageid <file>`: Fabric's `peer lifecycle chaincode package` and
 * `calculatepackageid`. Both work offline; the package id is `label:sha256(package file)`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LoomError } from '@loom/common';
import {
  CHAINCODE_TYPES,
  type ChaincodeType,
  createPackage,
  packageIdOf,
  parsePackage,
} from '@loom/peer/chaincode/package/index';
import type { Command } from 'commander';
import { output } from '../output.js';

/** The `chaincode` command group, shared with the other chaincode subcommands (install, approve, ...). */
export function chaincodeCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'chaincode') ??
    program.command('chaincode').description('package, install, approve, commit and query chaincode')
  );
}

export function registerChaincodePackageCommand(program: Command): void {
  const chaincode = chaincodeCommand(program);
  const json = () => Boolean(program.opts().json);

  chaincode
    .command('package <dir>')
    .description('package a chaincode directory (Fabric layout: metadata.json + code.tar.gz) and print its package id')
    .requiredOption('-l, --label <label>', 'package label, e.g. basic_1.0')
    .option('-t, --type <type>', `chaincode type (${CHAINCODE_TYPES.join('|')})`, 'node')
    .option('-o, --output <file>', 'output file (default: <label>.tar.gz)')
    .action(async (dir: string, opts: { label: string; type: string; output?: string }) => {
      if (!CHAINCODE_TYPES.includes(opts.type as ChaincodeType)) {
        throw new LoomError('CHAINCODE_PACKAGE_INVALID', `unsupported --type ${opts.type}`);
      }
      const bytes = await createPackage(resolve(dir), opts.label, opts.type as ChaincodeType);
      const file = resolve(opts.output ?? `${opts.label}.tar.gz`);
      await writeFile(file, bytes);
      const packageId = packageIdOf(opts.label, bytes);
      output(json(), { packageId, file, bytes: bytes.length }, () => packageId);
    });

  chaincode
    .command('calculatepackageid <file>')
    .description('validate a chaincode package and print its package id')
    .action(async (file: string) => {
      const pkg = parsePackage(new Uint8Array(await readFile(resolve(file))));
      output(json(), { packageId: pkg.packageId, label: pkg.label, type: pkg.type }, () => pkg.packageId);
    });
}

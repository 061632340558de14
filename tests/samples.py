"""Sample documents shared by the tests (and bench/): small Markdown files in English and
Chinese, and generators of long ones."""

from __future__ import annotations

GUIDE_MD = """\
# Orbit Notes Guide

Orbit Notes is a small note-taking server for teams.

## 3 Install

### 3.1 Linux

Download the package and run `orbit-notes setup`. The service listens on port 7020.

### 3.2 Windows

Run the installer as an administrator. Windows Defender may ask to allow the network port;
accept it, otherwise colleagues cannot reach the server.

## 4 Backups

Backups run every night at two o'clock and are kept for thirty days.
Restore a backup with `orbit-notes restore DATE`.
"""

LEAVE_MD = """\
# 员工休假制度

## 年假

员工入职满一年后享有十天带薪年假。年假需要提前两周在系统中提交申请，由部门经理审批。

## 病假

病假超过三天需要提供医院出具的证明。病假期间工资按基本工资的百分之八十发放。
"""

RELEASE_MD = """\
# Harbor Release Handbook

How the Harbor team ships a release, from freeze to rollback.

## 1 Code freeze

The code freeze starts every second Thursday at noon. After the freeze only fixes for
release blockers are merged, and each one needs a second reviewer.

## 2 Deploying

### 2.1 Staging

Every release candidate runs on staging for at least one full day before it goes out.
The smoke tests must pass twice in a row.

### 2.2 Production

Production deploys happen on Tuesday mornings between nine and eleven. The on-call
engineer watches the error dashboard for an hour after each deploy.

## 3 Rolling back

If the error rate doubles after a deploy, roll back at once with `harbor rollback` and
open an incident ticket; the fix waits for the next release window.
"""

EXPENSES_MD = """\
# 差旅报销制度

## 报销时限

出差结束后三十天内必须在财务系统中提交报销申请，逾期提交的申请不予受理。

## 住宿标准

一线城市每晚住宿费用不超过六百元，其他城市每晚不超过四百元。超标部分由员工自行承担。

## 交通费用

乘坐高铁应选择二等座；飞行时间超过四小时的航班可以申请商务舱，但需要部门总监提前批准。
"""


def big_list(lines: int, unique: dict[int, str]) -> bytes:
    """A Markdown list of ``lines`` items (item ``i`` says ``unique[i]`` if given)."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    out = ["# Inventory", ""]
    for i in range(lines):
        tail = unique.get(i) or f"{words[i % 9]} {words[(i * 7) % 9]} {i * 7919 % 100_003}"
        out.append(f"- item {i}: {tail}")
    return ("\n".join(out) + "\n").encode()

// Walks the deploy wizard in a page, step by step, the way a user would (shared by
// e2e/ui/wizard.e2e.test.ts and scripts/deploy-screenshots.ts). Each helper waits for what the
// step shows before it returns, and fails with what the page said when that does not come.
import type { Page } from 'playwright-core';

export async function openWizard(page: Page): Promise<void> {
  await page.getByTestId('open-deploy').click();
  await page.getByTestId('deploy-wizard').waitFor();
}

/** The text of a locator when it exists, for error messages. */
async function textOf(page: Page, testId: string): Promise<string> {
  const l = page.getByTestId(testId);
  return (await l.count()) ? ((await l.first().textContent()) ?? '') : '';
}

/** Waits for the target check to finish (a result or an error is shown). */
export async function waitForCheck(page: Page, timeoutMs = 60_000): Promise<void> {
  await page.locator('[data-testid="wizard-target"][data-checking="false"]').waitFor({ timeout: timeoutMs });
  await page.locator('[data-testid="target-result"], [data-testid="target-error"]').first().waitFor({ timeout: timeoutMs });
}

export async function chooseQemuLocal(page: Page): Promise<void> {
  await page.getByTestId('target-kind').getByText('Local QEMU (this machine)').click();
  await waitForCheck(page);
}

export async function chooseProxmox(page: Page, alias: string): Promise<void> {
  await page.getByTestId('target-kind').getByText('Proxmox VE over SSH').click();
  const host = page.locator(`[data-testid="ssh-host"][data-alias="${alias}"]`);
  await host.waitFor({ timeout: 15_000 });
  await host.click();
  await waitForCheck(page);
}

export async function next(page: Page): Promise<void> {
  const button = page.getByTestId('wizard-next');
  try {
    await button.and(page.locator(':enabled')).waitFor({ timeout: 30_000 });
  } catch (err) {
    throw new Error(`wizard "Next" stayed disabled: ${await textOf(page, 'wizard-blocker')}`, { cause: err });
  }
  await button.click();
}

export async function chooseSource(page: Page, source: 'editor' | 'reference-16' | 'lab-3' | 'solo-1'): Promise<void> {
  await page.getByTestId(`source-${source}`).click();
  await page.locator(`[data-testid="source-${source}"][aria-pressed="true"]`).waitFor({ timeout: 15_000 });
}

/** Waits for the review's decisions (or its error). */
export async function waitForReview(page: Page, timeoutMs = 60_000): Promise<void> {
  await page.locator('[data-testid="wizard-review"][data-reviewing="false"]').waitFor({ timeout: timeoutMs });
  await page.locator('[data-testid="review-decisions"], [data-testid="review-error"]').first().waitFor({ timeout: timeoutMs });
  const error = await textOf(page, 'review-error');
  if (error) throw new Error(`the review failed: ${error}`);
}

/** From the Build step: starts the deploy; resolves when the Pipeline view shows the run. */
export async function startDeploy(page: Page): Promise<void> {
  await page.getByTestId('start-deploy').click();
  try {
    await page.locator('[data-testid="view-pipeline"]:not(.kd-hidden) [data-testid="stage-row"][data-stage="validate"]').waitFor({ timeout: 30_000 });
  } catch (err) {
    throw new Error(`the deploy did not start: ${await textOf(page, 'start-error')}`, { cause: err });
  }
}

export function stageState(page: Page, stage: string): Promise<string | null> {
  return page.locator(`[data-testid="view-pipeline"] [data-testid="stage-row"][data-stage="${stage}"]`).getAttribute('data-state');
}

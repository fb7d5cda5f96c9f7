// The first-time deploy wizard: Target → Template → Network → Review → Build → Deploy. Each
// step says why "Next" is not possible yet; nothing changes on a target before "Build and deploy".
import { Button, Group, Stepper, Text, Title } from '@mantine/core';
import { IconArrowLeft, IconArrowRight } from '@tabler/icons-react';
import { useStore } from 'zustand';
import { analysisStore } from '../analysis/store';
import { specStore } from '../spec/store';
import { ClusterActions } from './ClusterActions';
import { BuildStep, DeployStep } from './RunSteps';
import { ReviewStep } from './ReviewStep';
import { NetworkStep, TemplateStep } from './SpecSteps';
import { stepBlocker, WIZARD_STEPS, wizardStore } from './store';
import { TargetStep } from './TargetStep';

const STEPS: { label: string; description: string }[] = [
  { label: 'Target', description: 'Proxmox or local QEMU' },
  { label: 'Template', description: 'what to deploy' },
  { label: 'Network', description: 'LAN, VIP, planes' },
  { label: 'Review', description: 'diff against the target' },
  { label: 'Build', description: 'artifacts' },
  { label: 'Deploy', description: 'stages and nodes' },
];

export function DeployWizard() {
  const s = useStore(wizardStore);
  const text = useStore(specStore, (x) => x.text);
  const valid = useStore(analysisStore, (x) => Boolean(x.spec) && !x.planIsStale && x.text === text);
  const blocker = stepBlocker(s, { text, valid });
  const step = WIZARD_STEPS[s.step];
  const canGoTo = (i: number): boolean => i < s.step && s.step < 5;
  return (
    <div style={{ position: 'absolute', inset: 0, overflow: 'auto' }} data-testid="deploy-wizard">
      <div style={{ padding: 16, maxWidth: 1280 }}>
        <Title order={4} mb="sm">
          Deploy a cluster
        </Title>
        <ClusterActions />
        <Stepper active={s.step} onStepClick={(i) => canGoTo(i) && s.set({ step: i })} size="sm" mb="md" allowNextStepsSelect={false}>
          {STEPS.map((st, i) => (
            <Stepper.Step key={st.label} label={st.label} description={st.description} data-testid={`wizard-step-${WIZARD_STEPS[i]}`} />
          ))}
        </Stepper>
        {step === 'target' && <TargetStep />}
        {step === 'template' && <TemplateStep />}
        {step === 'network' && <NetworkStep />}
        {step === 'review' && <ReviewStep />}
        {step === 'build' && <BuildStep />}
        {step === 'deploy' && <DeployStep />}
        {s.step < 5 && (
          // Sticky: long check lists must not push Back/Next out of sight.
          <Group mt="lg" gap="sm" py="sm" style={{ position: 'sticky', bottom: 0, background: 'var(--mantine-color-body)', borderTop: '1px solid var(--mantine-color-default-border)', zIndex: 2 }}>
            <Button variant="default" leftSection={<IconArrowLeft size={16} />} disabled={s.step === 0} onClick={() => s.set({ step: s.step - 1 })} data-testid="wizard-back">
              Back
            </Button>
            {s.step < 4 && (
              <Button rightSection={<IconArrowRight size={16} />} disabled={blocker !== undefined} onClick={() => s.set({ step: s.step + 1 })} data-testid="wizard-next">
                Next
              </Button>
            )}
            {blocker && s.step < 4 && (
              <Text size="sm" c="dimmed" data-testid="wizard-blocker">
                {blocker}
              </Text>
            )}
          </Group>
        )}
      </div>
    </div>
  );
}

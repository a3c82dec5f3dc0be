# Compares the model predictions in /tmp/compare.tsv with the engine outcomes; run after compare.py.
import re,csv
rows=[l.rstrip('\n').split('\t') for l in open('/tmp/compare.tsv')]
# rebuild env per case from dump
import os
DUMP='/tmp/indep-dump'
def envfor(cid):
    env={}
    for x in open(os.path.join(DUMP,cid+'.txt')):
        x=x.rstrip('\n').split('\t')
        if not x[0].isdigit(): continue
        m=re.match(r'([a-z]\d+) = ',x[1]); mm=re.match(r'returned (?:TRUE )?(0x[0-9A-F]+)',x[2])
        if m and mm: env[m.group(1)]=int(mm.group(1),16)
    return env
def ev(e,env):
    e=re.sub(r'\b([a-z]\d+)\b', lambda m: str(env.get(m.group(1),'None')), e.strip())
    try: return eval(e)
    except Exception: return None
def judge(mod,eng,env):
    if mod.startswith('unpredictable'): return 'M-unpredictable'
    if ' or ' in mod: return 'M-oneOf'
    if mod=='returns nothing': return 'ok' if eng=='returned' else 'DIFF'
    if mod=='returns NULL': return 'ok' if eng in('returned 0x0','returned FALSE') else 'DIFF'
    m=re.match(r'raises (0x[0-9A-F]+)',mod)
    if m: return 'ok' if eng=='raised '+m.group(1) else 'DIFF'
    m=re.match(r'bug check (0x[0-9A-F]+)\((.*)\)',mod)
    if m:
        me=re.match(r'bug check (0x[0-9A-F]+)\((.*)\)',eng)
        if not me or int(m.group(1),16)!=int(me.group(1),16): return 'DIFF'
        for d,e in zip(m.group(2).split(','),me.group(2).split(',')):
            d=d.strip()
            if d=='*': continue
            v=ev(d,env)
            if v is None: return 'M-param?'
            if v!=int(e,16): return 'DIFF'
        return 'ok'
    if mod.startswith('returns a new') or mod.startswith('returns the physical address'):
        return 'ok' if eng.startswith('returned') and eng!='returned 0x0' else 'DIFF'
    m=re.match(r'returns an? (?:system|user) mapping of \w+ at offset (0x[0-9A-F]+)',mod)
    if m:
        me=re.match(r'returned (0x[0-9A-F]+)',eng)
        return 'ok' if me and int(me.group(1),16)&0xFFF==int(m.group(1),16)&0xFFF and int(me.group(1),16)!=0 else 'DIFF'
    m=re.match(r'returns a mapping of physical (0x[0-9A-F]+)',mod)
    if m:
        me=re.match(r'returned (0x[0-9A-F]+)',eng)
        return 'ok' if me and int(me.group(1),16)&0xFFF==int(m.group(1),16)&0xFFF else 'DIFF'
    m=re.match(r'returns (.*)$',mod)
    if m:
        return 'ok' if 'returned '+m.group(1)==eng else 'DIFF'
    return 'M-?'
out=[]
from collections import Counter
c=Counter()
for r in rows:
    cid,i,call,ann,eng,mod,res=r
    j=judge(mod,eng,envfor(cid)) if mod else 'n/a'
    c[j]+=1
    out.append(r+[j])
open('/tmp/compare2.tsv','w').write(''.join('\t'.join(r)+'\n' for r in out))
print(c)
for r in out:
    if r[7] not in('ok',): print('\t'.join([r[0],r[1],r[3][:60],r[4][:70],r[5][:90],r[6],r[7]]))
print('--- all steps, model vs engine ---')
cc=Counter()
for f in sorted(os.listdir(DUMP)):
    env=envfor(f[:-4])
    for x in open(os.path.join(DUMP,f)):
        x=x.rstrip('\n').split('\t')
        if not x[0].isdigit(): continue
        j=judge(x[3],x[2],env); cc[j]+=1
        if j not in('ok','M-oneOf') and not x[1].startswith(tuple(['d%d = ReadMemory(m'%k for k in range(10)])):
            print(f, x[0], x[1][:60], '|', x[2][:50], '|', x[3][:80], j)
print(cc)

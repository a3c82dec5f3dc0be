# Checks every #=> annotation of docs/independence/I*.txt against the engine outcomes in /tmp/indep-dump
# (written by DumpHarness.swift); writes /tmp/compare.tsv. See docs/INDEPENDENCE.md §2.0.
import re,os,sys
D=os.path.join(os.path.dirname(os.path.abspath(__file__)),'..'); DUMP='/tmp/indep-dump'
def ev(expr, env):
    expr=expr.strip()
    e=re.sub(r'\b([a-z]\d+)\b', lambda m: str(env.get(m.group(1),'None')), expr)
    try: return eval(e)
    except Exception: return None
rows=[]
for f in sorted((x for x in os.listdir(D) if x.startswith("I") and x.endswith(".txt")), key=lambda s:int(s[1:-4])):
    cid=f[:-4]
    calls=[]
    for l in open(os.path.join(D,f)):
        s=l.strip()
        if not s or s.startswith('#') or s.startswith('machine') or s.startswith('fault'): continue
        ann=None
        if '#=>' in s: ann=s.split('#=>',1)[1].strip()
        calls.append((s.split('#')[0].strip(), ann))
    dump=[x.rstrip('\n').split('\t') for x in open(os.path.join(DUMP,f))]
    steps={int(x[0]):x for x in dump if x[0].isdigit()}
    verdict=[x for x in dump if not x[0].isdigit()]
    env={}
    for i,(call,ann) in enumerate(calls,1):
        st=steps.get(i)
        eng=st[2] if st else '(not run: '+(verdict[0][0]+' '+verdict[0][1] if verdict else '')+')'
        mod=st[3] if st else ''
        m=re.match(r'([a-z]\d+) = ',call)
        if m and st:
            mm=re.match(r'returned (?:TRUE )?(0x[0-9A-F]+)',eng)
            if mm: env[m.group(1)]=int(mm.group(1),16)
            elif eng in('returned FALSE',): env[m.group(1)]=0
            elif eng=='returned TRUE': env[m.group(1)]=1
            else:
                mm=re.match(r'returned ([0-9A-F]+)$',eng)
                if mm: env[m.group(1)+'_bytes']=mm.group(1)
        if ann is None: continue
        res='manual'
        a=ann
        if not st:
            res='NOTRUN'
        elif a.startswith('ok'):
            res='match' if eng=='returned' else 'MISMATCH'
        elif a.startswith('any'):
            res='match' if eng.startswith('returned') and eng not in('returned 0x0','returned FALSE') else 'MISMATCH'
        elif a.startswith('raise'):
            res='match' if eng=='raised '+a.split()[1] else 'MISMATCH'
        elif a.startswith('bugcheck'):
            mm=re.match(r'bugcheck (0x[0-9A-F]+)\((.*?)\)\s*(.*)$',a)
            me=re.match(r'bug check (0x[0-9A-F]+)\((.*)\)',eng)
            if not me: res='MISMATCH'
            else:
                ok= int(mm.group(1),16)==int(me.group(1),16)
                dp=[p.strip() for p in mm.group(2).split(',')]; ep=[int(p,16) for p in me.group(2).split(',')]
                for d,e in zip(dp,ep):
                    if d=='?': continue
                    v=ev(d,env)
                    if v is None: res='manual'; break
                    if v!=e: ok=False
                else:
                    res='match' if ok else 'MISMATCH'
                if not ok: res='MISMATCH'
        elif a.startswith('bytes'):
            toks=a.split()[1:]; hx=''
            brack=False
            for t in toks:
                if re.fullmatch(r'[0-9A-F]+',t): hx+=t
                else:
                    if t.startswith('['): brack=True
                    break
            me=re.match(r'returned ([0-9A-F]*)$',eng)
            if not me: res='MISMATCH'
            elif brack: res='match-prefix' if me.group(1).startswith(hx) else 'MISMATCH'
            else: res='match' if me.group(1)==hx else 'MISMATCH'
        elif a.startswith('parse error'):
            res='manual'
        elif a.startswith('same bytes as'):
            res='manual'
        else:
            expr=a.split('(')[0].split(',')[0].strip() if not a.startswith('(') else a
            expr=re.split(r'\s+\(|\s{2,}',a)[0].strip()
            v=ev(expr,env)
            mm=re.match(r'returned (?:TRUE )?(0x[0-9A-F]+)',eng)
            if eng=='returned FALSE': got=0
            elif eng=='returned TRUE': got=1
            elif mm: got=int(mm.group(1),16)
            else: got=None
            if v is None or got is None: res='manual'
            else: res='match' if v==got else 'MISMATCH'
        rows.append((cid,i,call,ann,eng,mod,res))
with open('/tmp/compare.tsv','w') as o:
    for r in rows: o.write('\t'.join(map(str,r))+'\n')
from collections import Counter
print(Counter(r[6] for r in rows))

// Command vcsim is vctp's test vCenter: VMware's govmomi simulator (0.24.2)
// with a deterministic inventory of tiered resource pools, a tenant folder
// tree and N virtual machines, plus a small JSON control server so tests can
// read the simulator's own view of the inventory and make churn between two
// collector snapshots.
//
// Build (GOPATH mode: Debian ships govmomi's sources, there is no module proxy):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim .
//
// Run:
//
//	vcsim -listen 127.0.0.1:0 -cert cert.pem -key key.pem -vms 200 \
//	      -username vctp -password secret -control 127.0.0.1:0
//
// When ready it prints exactly two lines on stdout, VCSIM_URL=<sdk url> and
// VCSIM_CONTROL=<control url>, then serves until SIGTERM or SIGINT.
//
// Control server (plain HTTP, JSON):
//
//	GET  /inventory  the simulator's VMs, sorted by moref
//	POST /churn      create 3, destroy 2, reconfigure 2, move 2, power off 1
//	POST /attribute  {"moref","name","value"}: set a VM's custom attribute through the
//	                 simulator's CustomFieldsManager (defining the field on first use)
//
// Simulator facts this harness works around (govmomi 0.24.2):
//   - its built-in TLS certificate is RSA-1024, which rustls, curl and
//     OpenSSL 3 reject, so we serve the 2048-bit -cert/-key instead;
//   - the stock model only puts VMs in each cluster's root pool, so the model
//     creates none and we create ours through an in-process client;
//   - simulator.Map is global and its iteration order is random, so every
//     list used for placement is sorted first;
//   - RelocateVM_Task only updates the VM's resourcePool property (it does
//     not move the VM between the pools' vm lists); we read placement from
//     the VM, as a collector does;
//   - SetField appends a value to customValue even when the key has one
//     already, so a VM shows both; the later one is the current value.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Child pools created under every cluster's root "Resources" pool. The first
// four are vctp's built-in tiers; Dev is an untiered pool.
var poolNames = []string{"Tin", "Bronze", "Silver", "Gold", "Dev"}

// Folder tree under the datacenter's vm folder ("" is the vm folder itself).
var folderPaths = []string{"", "Tenants", "Tenants/Acme", "Tenants/Globex", "Infra"}

var cpuChoices = []int32{1, 2, 2, 4, 4, 8, 16}
var memChoices = []int64{512, 1024, 2048, 4096, 8192, 16384, 32768}
var diskChoicesGB = []int64{16, 40, 60, 100, 250}

// Every templateEvery-th VM becomes a template (powered off, no pool), as
// real vCenters have a few and a collector must cope with them.
const templateEvery = 97

const datastoreName = "LocalDS_0"

// cluster is one cluster with its hosts and pools, all sorted by name.
type cluster struct {
	name  string
	hosts []*object.HostSystem
	// pools[0] is the root "Resources" pool, then poolNames in order.
	pools []*object.ResourcePool
}

type harness struct {
	ctx      context.Context
	c        *vim25.Client
	clusters []cluster
	folders  []*object.Folder // parallel to folderPaths

	mu    sync.Mutex // serializes control requests (inventory reads vs churn)
	round int        // churn rounds done so far
	base  int        // VMs created at startup
}

// VM is one row of GET /inventory.
type VM struct {
	Moref        string  `json:"moref"`
	Name         string  `json:"name"`
	UUID         string  `json:"uuid"`
	InstanceUUID string  `json:"instance_uuid"`
	NumCPU       int32   `json:"num_cpu"`
	MemoryMB     int32   `json:"memory_mb"`
	Pool         *string `json:"pool"` // null for templates: they have no resource pool
	Folder       string  `json:"folder"`
	Host         string  `json:"host"`
	Cluster      string  `json:"cluster"`
	Datacenter   string  `json:"datacenter"`
	PowerState   string  `json:"power_state"`
	Template     bool    `json:"template"`

	// Kept for churn decisions, not part of the JSON.
	hostRef types.ManagedObjectReference
	poolRef *types.ManagedObjectReference
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "SDK listen address")
	certFile := flag.String("cert", "", "TLS certificate (PEM); without -cert/-key the SDK is plain HTTP")
	keyFile := flag.String("key", "", "TLS private key (PEM)")
	vms := flag.Int("vms", 200, "number of VMs to create")
	username := flag.String("username", "", "accepted user name (empty with -password empty: any non-empty credentials)")
	password := flag.String("password", "", "accepted password")
	control := flag.String("control", "127.0.0.1:0", "control server listen address")
	flag.Parse()

	log.SetPrefix("vcsim: ")
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	if (*certFile == "") != (*keyFile == "") {
		log.Fatal("-cert and -key go together")
	}
	if (*username == "") != (*password == "") {
		log.Fatal("-username and -password go together")
	}
	if *vms < 0 {
		log.Fatal("-vms must be >= 0")
	}

	start := time.Now()
	model := simulator.VPX()
	model.Datacenter = 1
	model.Cluster = 2
	model.ClusterHost = 2
	model.Host = 0 // no standalone hosts: every VM sits in a cluster
	model.Pool = 0 // our own named child pools instead of RP1..n
	model.Machine = 0
	model.Portgroup = 0 // our VMs have no NICs; saves the DVS setup
	model.Datastore = 1
	model.Autostart = false
	if err := model.Create(); err != nil {
		log.Fatalf("model: %v", err)
	}
	// Removes the datastore directories the model made under $TMPDIR.
	defer model.Remove()

	ctx := context.Background()
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		log.Fatalf("in-process client: %v", err)
	}
	h := &harness{ctx: ctx, c: c}
	if err := h.buildPlaces(); err != nil {
		log.Fatalf("inventory places: %v", err)
	}
	for i := 0; i < *vms; i++ {
		if _, err := h.createVM(i, fmt.Sprintf("vm%05d", i)); err != nil {
			log.Fatalf("create VM %d: %v", i, err)
		}
		// Progress for the start script's log tail when a big start times out.
		if (i+1)%2000 == 0 {
			log.Printf("%d/%d VMs created", i+1, *vms)
		}
	}
	h.base = *vms
	log.Printf("created %d VMs in %.2fs", *vms, time.Since(start).Seconds())

	model.Service.Listen = &url.URL{Host: *listen}
	if *username != "" {
		// A user other than simulator.DefaultLogin makes Login compare
		// credentials exactly (wrong ones get InvalidLogin).
		model.Service.Listen.User = url.UserPassword(*username, *password)
	}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("load -cert/-key: %v", err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	server := model.Service.NewServer()
	sdk := *server.URL
	sdk.User = nil // never print credentials

	ctl, err := net.Listen("tcp", *control)
	if err != nil {
		log.Fatalf("control listen: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/inventory", h.serveInventory)
	mux.HandleFunc("/churn", h.serveChurn)
	mux.HandleFunc("/attribute", h.serveAttribute)
	ctlServer := &http.Server{Handler: mux}
	go func() {
		if err := ctlServer.Serve(ctl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("control server: %v", err)
		}
	}()

	fmt.Printf("VCSIM_URL=%s\n", sdk.String())
	fmt.Printf("VCSIM_CONTROL=http://%s\n", ctl.Addr().String())
	log.Printf("ready in %.2fs", time.Since(start).Seconds())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("%v: shutting down", s)
	_ = ctlServer.Close()
	server.Close()
}

// buildPlaces creates the pools and folders and remembers clusters, hosts,
// pools and folders in a deterministic order.
func (h *harness) buildPlaces() error {
	finder := newFinder(h)
	dc, err := finder.dc()
	if err != nil {
		return err
	}
	dcFolders, err := dc.Folders(h.ctx)
	if err != nil {
		return err
	}

	// Folders: parents come before children in folderPaths; path.Dir of a
	// top-level folder is ".", the vm folder itself.
	byPath := map[string]*object.Folder{"": dcFolders.VmFolder, ".": dcFolders.VmFolder}
	for _, p := range folderPaths {
		if p == "" {
			continue
		}
		parent, ok := byPath[path.Dir(p)]
		if !ok {
			return fmt.Errorf("folder %q listed before its parent", p)
		}
		f, err := parent.CreateFolder(h.ctx, path.Base(p))
		if err != nil {
			return fmt.Errorf("create folder %s: %w", p, err)
		}
		byPath[p] = f
	}
	for _, p := range folderPaths {
		h.folders = append(h.folders, byPath[p])
	}

	clusters, err := finder.list("ClusterComputeResource")
	if err != nil {
		return err
	}
	for _, cr := range clusters {
		cl := cluster{name: cr.name}
		hosts, err := object.NewComputeResource(h.c, cr.ref).Hosts(h.ctx)
		if err != nil {
			return err
		}
		sort.Slice(hosts, func(i, j int) bool { return hosts[i].Reference().Value < hosts[j].Reference().Value })
		if len(hosts) == 0 {
			return fmt.Errorf("cluster %s has no hosts", cr.name)
		}
		cl.hosts = hosts
		root, err := object.NewComputeResource(h.c, cr.ref).ResourcePool(h.ctx)
		if err != nil {
			return err
		}
		cl.pools = append(cl.pools, root)
		for _, name := range poolNames {
			p, err := root.Create(h.ctx, name, types.DefaultResourceConfigSpec())
			if err != nil {
				return fmt.Errorf("create pool %s/%s: %w", cr.name, name, err)
			}
			cl.pools = append(cl.pools, p)
		}
		h.clusters = append(h.clusters, cl)
	}
	if len(h.clusters) == 0 {
		return errors.New("model has no clusters")
	}
	return nil
}

// mix is a small integer hash so placement and sizes vary "randomly" but
// reproducibly with the VM index.
func mix(i int, salt uint32) uint32 {
	x := uint32(i)*2654435761 ^ salt*40503
	x ^= x >> 15
	x *= 2246822519
	x ^= x >> 13
	return x
}

// createVM creates VM number i (placement and sizes are functions of i only)
// and returns its moref.
func (h *harness) createVM(i int, name string) (types.ManagedObjectReference, error) {
	cl := h.clusters[i%len(h.clusters)]
	host := cl.hosts[(i/len(h.clusters))%len(cl.hosts)]
	pool := cl.pools[int(mix(i, 1)%uint32(len(cl.pools)))]
	folder := h.folders[int(mix(i, 2)%uint32(len(h.folders)))]
	template := i%templateEvery == templateEvery-1
	poweredOn := !template && mix(i, 3)%10 != 0

	spec := types.VirtualMachineConfigSpec{
		Name:     name,
		GuestId:  string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		NumCPUs:  cpuChoices[mix(i, 4)%uint32(len(cpuChoices))],
		MemoryMB: memChoices[mix(i, 5)%uint32(len(memChoices))],
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + datastoreName + "]"},
	}
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{},
		spec.Files.VmPathName+" "+path.Join(name, "disk1.vmdk"))
	disk.CapacityInKB = diskChoicesGB[mix(i, 6)%uint32(len(diskChoicesGB))] * 1024 * 1024
	devices = append(devices, scsi, disk)
	spec.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}

	task, err := folder.CreateVM(h.ctx, spec, pool, host)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	info, err := task.WaitForResult(h.ctx, nil)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return types.ManagedObjectReference{}, fmt.Errorf("CreateVM_Task result is %T", info.Result)
	}
	vm := object.NewVirtualMachine(h.c, ref)
	switch {
	case template:
		if err := vm.MarkAsTemplate(h.ctx); err != nil {
			return ref, fmt.Errorf("mark %s as template: %w", name, err)
		}
	case poweredOn:
		if err := waitTask(h.ctx, vm.PowerOn); err != nil {
			return ref, fmt.Errorf("power on %s: %w", name, err)
		}
	}
	return ref, nil
}

func waitTask(ctx context.Context, start func(context.Context) (*object.Task, error)) error {
	task, err := start(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// ---------------------------------------------------------------------------
// Reading the inventory back through the in-process client. The property
// collector takes the simulator's per-object locks, so this is safe while
// SOAP clients and churn change the inventory.

type place struct {
	kind   string
	name   string
	parent *types.ManagedObjectReference
}

func (h *harness) withView(kinds []string, props []string) ([]types.ObjectContent, error) {
	m := view.NewManager(h.c)
	v, err := m.CreateContainerView(h.ctx, h.c.ServiceContent.RootFolder, kinds, true)
	if err != nil {
		return nil, err
	}
	// Views live in the in-process session until destroyed.
	defer func() { _ = v.Destroy(h.ctx) }()
	var content []types.ObjectContent
	if err := v.Retrieve(h.ctx, kinds, props, &content); err != nil {
		return nil, err
	}
	return content, nil
}

// asRef accepts both forms the in-process property collector hands out.
func asRef(v interface{}) *types.ManagedObjectReference {
	switch r := v.(type) {
	case types.ManagedObjectReference:
		return &r
	case *types.ManagedObjectReference:
		if r == nil {
			return nil
		}
		c := *r
		return &c
	}
	return nil
}

func asInt32(v interface{}) int32 {
	switch n := v.(type) {
	case int32:
		return n
	case *int32:
		if n != nil {
			return *n
		}
	case int64:
		return int32(n)
	case int:
		return int32(n)
	}
	return 0
}

func asString(v interface{}) string {
	switch s := v.(type) {
	case string:
		return s
	case *string:
		if s != nil {
			return *s
		}
	case fmt.Stringer:
		return s.String()
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func asBool(v interface{}) bool {
	switch b := v.(type) {
	case bool:
		return b
	case *bool:
		return b != nil && *b
	}
	return false
}

func (h *harness) places() (map[types.ManagedObjectReference]place, error) {
	content, err := h.withView(
		[]string{"Folder", "Datacenter", "ClusterComputeResource", "ComputeResource", "HostSystem", "ResourcePool"},
		[]string{"name", "parent"})
	if err != nil {
		return nil, err
	}
	out := make(map[types.ManagedObjectReference]place, len(content))
	for _, oc := range content {
		p := place{kind: oc.Obj.Type}
		for _, prop := range oc.PropSet {
			switch prop.Name {
			case "name":
				p.name = asString(prop.Val)
			case "parent":
				p.parent = asRef(prop.Val)
			}
		}
		out[oc.Obj] = p
	}
	// The root folder is not inside its own container view.
	out[h.c.ServiceContent.RootFolder] = place{kind: "Folder", name: "Datacenters"}
	return out, nil
}

func (h *harness) inventory() ([]VM, error) {
	places, err := h.places()
	if err != nil {
		return nil, err
	}
	content, err := h.withView([]string{"VirtualMachine"}, []string{
		"name", "config.uuid", "config.instanceUuid", "config.hardware.numCPU",
		"config.hardware.memoryMB", "resourcePool", "parent", "runtime.host",
		"runtime.powerState", "config.template",
	})
	if err != nil {
		return nil, err
	}
	vms := make([]VM, 0, len(content))
	for _, oc := range content {
		vm := VM{Moref: oc.Obj.Value}
		var parent *types.ManagedObjectReference
		for _, prop := range oc.PropSet {
			switch prop.Name {
			case "name":
				vm.Name = asString(prop.Val)
			case "config.uuid":
				vm.UUID = asString(prop.Val)
			case "config.instanceUuid":
				vm.InstanceUUID = asString(prop.Val)
			case "config.hardware.numCPU":
				vm.NumCPU = asInt32(prop.Val)
			case "config.hardware.memoryMB":
				vm.MemoryMB = asInt32(prop.Val)
			case "resourcePool":
				vm.poolRef = asRef(prop.Val)
			case "parent":
				parent = asRef(prop.Val)
			case "runtime.host":
				if r := asRef(prop.Val); r != nil {
					vm.hostRef = *r
				}
			case "runtime.powerState":
				vm.PowerState = asString(prop.Val)
			case "config.template":
				vm.Template = asBool(prop.Val)
			}
		}
		if vm.poolRef != nil {
			if p, ok := places[*vm.poolRef]; ok {
				name := p.name
				vm.Pool = &name
			}
		}
		if hp, ok := places[vm.hostRef]; ok {
			vm.Host = hp.name
			if hp.parent != nil {
				if cp, ok := places[*hp.parent]; ok && cp.kind == "ClusterComputeResource" {
					vm.Cluster = cp.name
				}
			}
		}
		vm.Folder, vm.Datacenter = folderPath(places, parent)
		vms = append(vms, vm)
	}
	sort.Slice(vms, func(i, j int) bool { return morefLess(vms[i].Moref, vms[j].Moref) })
	return vms, nil
}

// morefLess orders "vm-9" before "vm-10": by prefix, then number.
func morefLess(a, b string) bool {
	ai, bi := strings.LastIndexByte(a, '-'), strings.LastIndexByte(b, '-')
	if ai >= 0 && bi >= 0 && a[:ai] == b[:bi] {
		an, aerr := strconv.Atoi(a[ai+1:])
		bn, berr := strconv.Atoi(b[bi+1:])
		if aerr == nil && berr == nil {
			return an < bn
		}
	}
	return a < b
}

// folderPath walks parents up to the datacenter: "/DC0/vm/Tenants/Acme".
func folderPath(places map[types.ManagedObjectReference]place, ref *types.ManagedObjectReference) (string, string) {
	var parts []string
	for depth := 0; ref != nil && depth < 64; depth++ {
		p, ok := places[*ref]
		if !ok {
			break
		}
		parts = append(parts, p.name)
		if p.kind == "Datacenter" {
			for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
				parts[i], parts[j] = parts[j], parts[i]
			}
			return "/" + strings.Join(parts, "/"), p.name
		}
		ref = p.parent
	}
	return "", ""
}

// ---------------------------------------------------------------------------
// Control server.

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		log.Printf("write response: %v", err)
	}
}

func fail(w http.ResponseWriter, status int, err error) {
	log.Printf("control: %v", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (h *harness) serveInventory(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		fail(w, http.StatusMethodNotAllowed, fmt.Errorf("%s /inventory: use GET", r.Method))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	vms, err := h.inventory()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, vms)
}

// ChurnResult is the body of POST /churn.
type ChurnResult struct {
	Created      []string `json:"created"`
	Destroyed    []string `json:"destroyed"`
	Reconfigured []string `json:"reconfigured"`
	Moved        []string `json:"moved"`
	PoweredOff   []string `json:"powered_off"`
}

func (h *harness) serveChurn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		fail(w, http.StatusMethodNotAllowed, fmt.Errorf("%s /churn: use POST", r.Method))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	res, err := h.churn()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, res)
}

// AttributeRequest is the body of POST /attribute.
type AttributeRequest struct {
	Moref string `json:"moref"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (h *harness) serveAttribute(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		fail(w, http.StatusMethodNotAllowed, fmt.Errorf("%s /attribute: use POST", r.Method))
		return
	}
	var req AttributeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("POST /attribute: %v", err))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.setAttribute(req); err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, req)
}

// setAttribute sets custom attribute req.Name of VM req.Moref over SOAP
// (AddCustomFieldDef when the field is new, then SetField), as an
// administrator would in the vSphere client.
func (h *harness) setAttribute(req AttributeRequest) error {
	fields, err := object.GetCustomFieldsManager(h.c)
	if err != nil {
		return err
	}
	key, err := fields.FindKey(h.ctx, req.Name)
	if errors.Is(err, object.ErrKeyNameNotFound) {
		def, addErr := fields.Add(h.ctx, req.Name, "VirtualMachine", nil, nil)
		if addErr != nil {
			return fmt.Errorf("define custom field %q: %v", req.Name, addErr)
		}
		key, err = def.Key, nil
	}
	if err != nil {
		return fmt.Errorf("find custom field %q: %v", req.Name, err)
	}
	vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: req.Moref}
	if err := fields.Set(h.ctx, vm, key, req.Value); err != nil {
		return fmt.Errorf("set %q on %s: %v", req.Name, req.Moref, err)
	}
	return nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// churn makes one deterministic round of changes. Victims are picked from
// the existing (non-template) VMs sorted by moref, walking them with a stride
// that depends on the round, so each round touches different VMs and the
// same sequence of rounds on the same start inventory gives the same result.
func (h *harness) churn() (*ChurnResult, error) {
	round := h.round
	h.round++
	res := &ChurnResult{
		Created: []string{}, Destroyed: []string{}, Reconfigured: []string{},
		Moved: []string{}, PoweredOff: []string{},
	}

	before, err := h.inventory()
	if err != nil {
		return nil, err
	}
	var candidates []VM
	for _, vm := range before {
		if !vm.Template && vm.poolRef != nil {
			candidates = append(candidates, vm)
		}
	}

	// Create first: new VMs are never victims of the same round.
	for k := 0; k < 3; k++ {
		i := h.base + round*3 + k
		ref, err := h.createVM(i, fmt.Sprintf("churn%03d-%d", round, k))
		if err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		res.Created = append(res.Created, ref.Value)
	}

	n := len(candidates)
	var order []VM
	if n > 0 {
		stride := 7 + round
		for gcd(stride, n) != 1 {
			stride++
		}
		start := (round * 131) % n
		for j := 0; j < n; j++ {
			order = append(order, candidates[(start+j*stride)%n])
		}
	}
	next := 0
	take := func(ok func(VM) bool) (VM, bool) {
		for ; next < len(order); next++ {
			if ok == nil || ok(order[next]) {
				next++
				return order[next-1], true
			}
		}
		return VM{}, false
	}

	for k := 0; k < 2; k++ {
		vm, ok := take(nil)
		if !ok {
			break
		}
		o := object.NewVirtualMachine(h.c, types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.Moref})
		if vm.PowerState == string(types.VirtualMachinePowerStatePoweredOn) {
			if err := waitTask(h.ctx, o.PowerOff); err != nil {
				return nil, fmt.Errorf("power off %s before destroy: %w", vm.Moref, err)
			}
		}
		if err := waitTask(h.ctx, o.Destroy); err != nil {
			return nil, fmt.Errorf("destroy %s: %w", vm.Moref, err)
		}
		res.Destroyed = append(res.Destroyed, vm.Moref)
	}

	for k := 0; k < 2; k++ {
		vm, ok := take(nil)
		if !ok {
			break
		}
		cpu, mem := nextSize(vm.NumCPU, int64(vm.MemoryMB))
		o := object.NewVirtualMachine(h.c, types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.Moref})
		err := waitTask(h.ctx, func(ctx context.Context) (*object.Task, error) {
			return o.Reconfigure(ctx, types.VirtualMachineConfigSpec{NumCPUs: cpu, MemoryMB: mem})
		})
		if err != nil {
			return nil, fmt.Errorf("reconfigure %s: %w", vm.Moref, err)
		}
		res.Reconfigured = append(res.Reconfigured, vm.Moref)
	}

	for k := 0; k < 2; k++ {
		vm, ok := take(nil)
		if !ok {
			break
		}
		target, err := h.otherPool(vm, round)
		if err != nil {
			return nil, err
		}
		o := object.NewVirtualMachine(h.c, types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.Moref})
		err = waitTask(h.ctx, func(ctx context.Context) (*object.Task, error) {
			return o.Relocate(ctx, types.VirtualMachineRelocateSpec{Pool: &target},
				types.VirtualMachineMovePriorityDefaultPriority)
		})
		if err != nil {
			return nil, fmt.Errorf("relocate %s: %w", vm.Moref, err)
		}
		res.Moved = append(res.Moved, vm.Moref)
	}

	if vm, ok := take(func(vm VM) bool {
		return vm.PowerState == string(types.VirtualMachinePowerStatePoweredOn)
	}); ok {
		o := object.NewVirtualMachine(h.c, types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.Moref})
		if err := waitTask(h.ctx, o.PowerOff); err != nil {
			return nil, fmt.Errorf("power off %s: %w", vm.Moref, err)
		}
		res.PoweredOff = append(res.PoweredOff, vm.Moref)
	}

	log.Printf("churn round %d: %+v", round, *res)
	return res, nil
}

// nextSize picks a different CPU count and memory size.
func nextSize(cpu int32, mem int64) (int32, int64) {
	newCPU := cpu * 2
	if newCPU > 32 {
		newCPU = 1
	}
	newMem := mem * 2
	if newMem > 65536 {
		newMem = 512
	}
	return newCPU, newMem
}

// otherPool picks a different pool in the VM's own cluster, so the VM's host
// stays valid.
func (h *harness) otherPool(vm VM, round int) (types.ManagedObjectReference, error) {
	for _, cl := range h.clusters {
		for _, host := range cl.hosts {
			if host.Reference() != vm.hostRef {
				continue
			}
			cur := -1
			for i, p := range cl.pools {
				if vm.poolRef != nil && p.Reference() == *vm.poolRef {
					cur = i
				}
			}
			n := len(cl.pools)
			idx := (cur + 1 + round%(n-1) + n) % n
			if idx == cur {
				idx = (idx + 1) % n
			}
			return cl.pools[idx].Reference(), nil
		}
	}
	return types.ManagedObjectReference{}, fmt.Errorf("VM %s: host %s is in no known cluster", vm.Moref, vm.hostRef.Value)
}

// ---------------------------------------------------------------------------
// Finding the datacenter and clusters (sorted) through the in-process client.

type finder struct{ h *harness }

type namedRef struct {
	name string
	ref  types.ManagedObjectReference
}

func newFinder(h *harness) finder { return finder{h} }

func (f finder) list(kind string) ([]namedRef, error) {
	content, err := f.h.withView([]string{kind}, []string{"name"})
	if err != nil {
		return nil, err
	}
	var out []namedRef
	for _, oc := range content {
		nr := namedRef{ref: oc.Obj}
		for _, p := range oc.PropSet {
			if p.Name == "name" {
				nr.name = asString(p.Val)
			}
		}
		out = append(out, nr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (f finder) dc() (*object.Datacenter, error) {
	dcs, err := f.list("Datacenter")
	if err != nil {
		return nil, err
	}
	if len(dcs) == 0 {
		return nil, errors.New("model has no datacenter")
	}
	return object.NewDatacenter(f.h.c, dcs[0].ref), nil
}
